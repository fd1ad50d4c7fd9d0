# The one HTTP client of the Underlay collection's plugins: JSON over HTTPS to the central, with a bearer
# token, keep-alive (one TLS handshake per plugin instance), and errors that never contain the token.
# Apache-2.0.
from __future__ import annotations

import http.client
import json
import select
import ssl
from urllib.parse import urlsplit


class UnderlayApiError(Exception):
    """An HTTP error answer (status, the central's error message) or a transport failure (status 0)."""

    def __init__(self, status, message, code=None, headers=None):
        super(UnderlayApiError, self).__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or {}


def read_token(token, token_file):
    """The token itself, or the first line of token_file; never echoed anywhere."""
    if token:
        return token.strip()
    if token_file:
        with open(token_file, 'r') as f:
            return f.readline().strip()
    return None


def _dropped(sock):
    """True when an idle connection's socket is readable: the peer closed it (EOF) or sent something
    unasked; either way it is not fit for the next request (urllib3 checks the same way)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)
    except (OSError, ValueError):
        return True


class UnderlayApi(object):
    def __init__(self, url, token, ca=None, validate_certs=True, timeout=60):
        parts = urlsplit(url.rstrip('/'))
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise UnderlayApiError(0, 'underlay: url must be http(s)://host[:port], got %r' % url)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.base = parts.path
        self.token = token
        self.timeout = timeout
        self.context = None
        if self.scheme == 'https':
            # Python's own TLS context: ansible's open_url(ca_path=) finds no certificate in a PEM file
            # with CRLF line endings, which is what the central's CA file has.
            self.context = ssl.create_default_context(cafile=ca)
            if not validate_certs:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE
        self._conn = None

    def _connection(self, timeout):
        if self._conn is not None and self._conn.sock is not None and _dropped(self._conn.sock):
            # The central closed the idle kept-alive connection (its keep-alive timeout): a fresh one now,
            # before a request is sent, so a POST is never sent twice.
            self.close()
        if self._conn is None:
            if self.scheme == 'https':
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.context)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        self._conn.timeout = timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method, path, body=None, headers=None, timeout=None):
        """(status, headers, bytes). A request on a reused connection that fails before any answer is sent
        once more on a fresh connection only when it is idempotent (not POST): a POST (a task) that the
        central may have received is never repeated, the caller gets the error instead."""
        h = {'Authorization': 'Bearer ' + (self.token or ''), 'Accept': 'application/json'}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(',', ':')).encode('utf-8')
            h['Content-Type'] = 'application/json'
        h.update(headers or {})
        for attempt in (1, 2):
            reused = self._conn is not None and self._conn.sock is not None
            conn = self._connection(timeout or self.timeout)
            try:
                conn.request(method, self.base + path, body=data, headers=h)
                res = conn.getresponse()
                raw = res.read()
                return res.status, dict((k.lower(), v) for k, v in res.getheaders()), raw
            except (OSError, http.client.HTTPException) as e:
                # A kept-alive connection the central closed while idle (its keep-alive timeout) fails as a
                # reset, a remote disconnect or a TLS EOF before any answer: once more on a fresh one.
                self.close()
                if not reused or attempt == 2 or method == 'POST' or isinstance(e, TimeoutError):
                    raise UnderlayApiError(0, '%s %s failed: %s' % (method, path, e))

    def json(self, method, path, body=None, expect=(200, 201), timeout=None, headers=None):
        status, hdrs, raw = self.request(method, path, body, headers=headers, timeout=timeout)
        if status not in expect:
            message, code = 'HTTP %s' % status, None
            try:
                err = json.loads(raw.decode('utf-8')).get('error') or {}
                message = '%s (HTTP %s)' % (err.get('message') or message, status)
                code = err.get('code')
            except Exception:
                pass
            raise UnderlayApiError(status, '%s %s: %s' % (method, path, message), code, hdrs)
        if status == 304 or not raw:
            return status, hdrs, None
        try:
            return status, hdrs, json.loads(raw.decode('utf-8'))
        except ValueError as e:
            raise UnderlayApiError(status, '%s %s did not return JSON: %s' % (method, path, e))
