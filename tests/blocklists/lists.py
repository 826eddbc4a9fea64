"""A hand-counted set of lists (over the unit tests' config) for validate and stats."""

from __future__ import annotations

SOCIAL = """\
# social networks
facebook.com
m.facebook.com        # redundant: facebook.com covers it
fbcdn.net
=exact.example.org
*.sub.example.net
a.sub.example.net
facebook.com          # written twice
youtube.com
not a domain!
"""

LISTS = {
    "social.txt": SOCIAL,
    "video.txt": "youtube.com\nfacebook.com\nwww.instagram.com\n",
    "allow.txt": "=about.instagram.com\nhelp.youtube.com\nfbcdn.net\n",
}
