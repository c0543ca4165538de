"""One XML-RPC call to Cobbler, JSON in and out, for the test harness and cobbler.sh.

Usage: python3 cobbler_rpc.py URL METHOD [ARG...], each ARG a JSON value. Prints the result
as JSON on stdout. A fault prints its faultString on stderr and exits 1; an
unreachable server exits 3.
"""

import json
import sys
import xmlrpc.client

url, method, *args = sys.argv[1:]
server = xmlrpc.client.ServerProxy(url, allow_none=True)
try:
    result = getattr(server, method)(*[json.loads(a) for a in args])
except xmlrpc.client.Fault as fault:
    print(fault.faultString, file=sys.stderr)
    sys.exit(1)
except OSError as err:
    print(f"cannot reach {url}: {err}", file=sys.stderr)
    sys.exit(3)
print(json.dumps(result, default=str))
