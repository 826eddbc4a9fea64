// Evaluate a PAC file as a browser does: `node pac_eval.js FILE URL...` prints {url: answer}.
// The helper functions follow Netscape's definitions. dnsResolve and isInNet on a name throw:
// schoolgate's PAC file must decide without a DNS look-up per request.
"use strict";
const fs = require("fs");
const vm = require("vm");

const IPV4 = /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/;
const number = (ip) => ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);

const sandbox = {
  isPlainHostName: (host) => !host.includes("."),
  dnsDomainIs: (host, domain) => host.endsWith(domain),
  isInNet: (host, pattern, mask) => {
    if (!IPV4.test(host)) throw new Error(`isInNet would resolve ${host}`);
    const m = number(mask);
    return (number(host) & m) >>> 0 === (number(pattern) & m) >>> 0;
  },
  dnsResolve: (host) => {
    throw new Error(`dnsResolve(${host})`);
  },
};
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), sandbox);
const answers = {};
for (const url of process.argv.slice(3)) {
  answers[url] = sandbox.FindProxyForURL(url, new URL(url).hostname);
}
console.log(JSON.stringify(answers));
