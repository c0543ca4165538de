"""Cobbler's /cblr/svc (nopxe, install triggers, autoinstall) without Apache.

Upstream's mod_wsgi app, /var/www/cobbler/svc/services.py, unchanged, under Python's
wsgiref. The app splits REQUEST_URI, which Apache sets and PEP 3333 servers do not:
this wrapper fills it in. Usage: python3 svc.py PORT (the Cobbler venv's python).
"""

import importlib.util
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

spec = importlib.util.spec_from_file_location("services", "/var/www/cobbler/svc/services.py")
services = importlib.util.module_from_spec(spec)
spec.loader.exec_module(services)


def application(environ, start_response):
    uri = environ.get("PATH_INFO", "/")
    if environ.get("QUERY_STRING"):
        uri += "?" + environ["QUERY_STRING"]
    environ["REQUEST_URI"] = uri
    return services.application(environ, start_response)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    # A slow request (an autoinstall render) must not hold up a nopxe.
    daemon_threads = True
    allow_reuse_address = True


class Handler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))
        sys.stderr.flush()


make_server("127.0.0.1", int(sys.argv[1]), application, ThreadingWSGIServer, Handler).serve_forever()
