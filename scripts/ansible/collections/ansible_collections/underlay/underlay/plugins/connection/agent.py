# Underlay connection plugin: Ansible without inbound SSH. Apache-2.0.
from __future__ import annotations

DOCUMENTATION = r"""
    name: agent
    short_description: Run Ansible on a machine as signed tasks through its Underlay site agent
    description:
        - Carries Ansible's work to a machine without SSH. Every operation is a task the central signs
          (Ed25519) and sends to the machine's site agent over the agent's own outbound link; the machine's
          runner long-polls its agent, verifies the signature, runs it as root and reports back.
        - C(exec_command) is an C(exec) task (with pipelining the module travels on stdin), C(put_file) and
          C(fetch_file) are C(put-file) / C(fetch-file) tasks of 512 KiB chunks.
        - The machine needs no SSH server, no open port, no account; Python only for Python modules
          (C(raw) needs none). The runner is root, so C(become) is not needed (leave it off).
        - Talks only to the central's API, with an operator token (a viewer token cannot create tasks).
    options:
        url:
            description: The central's base URL.
            type: str
            required: true
            env: [{name: UNDERLAY_URL}]
            vars: [{name: underlay_url}]
        token:
            description: An operator (or admin) bearer token. Never logged.
            type: str
            env: [{name: UNDERLAY_TOKEN}]
        token_file:
            description: A file whose first line is the token (instead of I(token)).
            type: path
            env: [{name: UNDERLAY_TOKEN_FILE}]
        ca:
            description: PEM file of the CA to trust for the central's certificate.
            type: path
            env: [{name: UNDERLAY_CA}]
        validate_certs:
            description: Verify the central's TLS certificate.
            type: bool
            default: true
            env: [{name: UNDERLAY_VALIDATE_CERTS}]
        machine:
            description: The machine's name (or id) in the central; the inventory host name by default.
            type: str
            vars: [{name: underlay_machine}, {name: inventory_hostname}]
        site:
            description: The machine's site (the inventory plugin sets C(underlay_site)).
            type: str
            required: true
            vars: [{name: underlay_site}]
        task_ttl:
            description: How long a task may wait for its machine before it expires (a duration such as C(5m)).
            type: str
            default: 10m
            env: [{name: UNDERLAY_TASK_TTL}]
            vars: [{name: underlay_task_ttl}]
        operation_timeout:
            description:
                - Seconds one operation may take end to end (delivery, run, report) before the play fails.
                - Not Ansible's connection C(timeout) (10 s), which is for establishing a connection.
            type: int
            default: 3600
            env: [{name: UNDERLAY_EXEC_TIMEOUT}]
            vars: [{name: underlay_exec_timeout}]
        pipelining:
            description: Send modules on stdin of one C(exec) (one round trip per module instead of five).
            type: bool
            default: true
            env: [{name: ANSIBLE_PIPELINING}]
            ini: [{section: defaults, key: pipelining}, {section: connection, key: pipelining}]
            vars: [{name: ansible_pipelining}]
"""

EXAMPLES = r"""
# group_vars/all.yml, with the inventory plugin underlay.underlay.inventory (it sets underlay_site)
ansible_connection: underlay.underlay.agent
"""

import base64
import os
import time
import uuid

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display
from ansible_collections.underlay.underlay.plugins.plugin_utils.api import UnderlayApi, UnderlayApiError, read_token

display = Display()

# shared/protocol/remote-kinds.ts
CHUNK_BYTES = 512 * 1024
EXEC_STDIN_BYTES = CHUNK_BYTES
FINAL = ('succeeded', 'failed', 'rejected', 'cancelled', 'expired')
WAIT = 55  # seconds per blocking GET /api/v1/tasks/{id}?wait= (the central caps it at 60)
# The central answers without the task's payload (the module we just sent, 100-500 KB): id, state, output.
MINIMAL = {'Prefer': 'return=minimal'}


class Connection(ConnectionBase):
    transport = 'underlay.underlay.agent'
    has_pipelining = True
    has_tty = False

    def __init__(self, *args, **kwargs):
        super(Connection, self).__init__(*args, **kwargs)
        self._api = None

    def _connect(self):
        if self._api is None:
            token = read_token(self.get_option('token'), self.get_option('token_file'))
            if not token:
                raise AnsibleConnectionFailure('underlay: no token (set UNDERLAY_TOKEN or UNDERLAY_TOKEN_FILE to an operator token)')
            try:
                self._api = UnderlayApi(self.get_option('url'), token, self.get_option('ca'), self.get_option('validate_certs'))
            except UnderlayApiError as e:
                raise AnsibleConnectionFailure(to_native(e))
            self._connected = True
        return self

    def close(self):
        if self._api is not None:
            self._api.close()
            self._api = None
        self._connected = False

    # ---- one signed task, start to finish --------------------------------------------------------------

    def _run(self, kind, payload):
        """Creates the task, waits for its final report; returns the task. Raises on anything but success."""
        self._connect()
        machine = self.get_option('machine')
        body = {'site': self.get_option('site'), 'machine': machine, 'kind': kind, 'payload': payload, 'ttl': self.get_option('task_ttl')}
        started = time.time()
        try:
            _, _, task = self._api.json('POST', '/api/v1/tasks', body, expect=(201,), headers=MINIMAL)
            deadline = started + self.get_option('operation_timeout')
            while task.get('state') not in FINAL:
                left = deadline - time.time()
                if left <= 0:
                    raise AnsibleConnectionFailure('underlay: %s task %s on %s did not finish within %s s (state %s); is the machine\'s runner up?'
                                                   % (kind, task['id'], machine, self.get_option('operation_timeout'), task.get('state')))
                wait = int(max(1, min(WAIT, left)))
                _, _, task = self._api.json('GET', '/api/v1/tasks/%s?wait=%ds' % (task['id'], wait), timeout=wait + 30, headers=MINIMAL)
        except UnderlayApiError as e:
            if e.status in (401, 403):
                raise AnsibleConnectionFailure('underlay: the central refused the token for %s tasks (%s): an operator token is needed' % (kind, to_native(e)))
            raise AnsibleConnectionFailure('underlay: %s on %s: %s' % (kind, machine, to_native(e)))
        display.vvv('underlay: %s task %s on %s %s in %.3f s' % (kind, task['id'], machine, task['state'], time.time() - started), host=machine)
        if task.get('output') == '[redacted]':
            raise AnsibleConnectionFailure('underlay: the central redacts task output for this token; use an operator token')
        if task['state'] != 'succeeded':
            raise AnsibleConnectionFailure('underlay: %s task %s on %s %s%s%s' % (
                kind, task['id'], machine, task['state'],
                ': ' + task['reason'] if task.get('reason') else '',
                ' (' + to_native(task.get('output') or '').strip()[:500] + ')' if task.get('output') else ''))
        return task

    @staticmethod
    def _header(output, tag):
        head, _, rest = (output or '').partition('\n')
        fields = head.split(' ', 4)  # tag, format version, then the kind's fields (a path last)
        if len(fields) < 3 or fields[0] != tag or fields[1] != '1':
            raise AnsibleConnectionFailure('underlay: the runner answered an unexpected %s output (an older runner?)' % tag)
        return fields[2:], rest

    def _fetch_range(self, path, offset, length):
        task = self._run('fetch-file', {'path': path, 'offset': offset, 'length': length})
        (size,), data = self._header(task.get('output'), 'underlay-fetch')
        return int(size), base64.b64decode(data)

    def _fetch_rest(self, path, have, size):
        """The bytes of path from offset len(have) to size, chunk by chunk."""
        out = [have]
        offset = len(have)
        while offset < size:
            _, chunk = self._fetch_range(path, offset, min(CHUNK_BYTES, size - offset))
            if not chunk:
                break
            out.append(chunk)
            offset += len(chunk)
        return b''.join(out)

    def _put_bytes(self, data, path):
        offset = 0
        while True:
            chunk = data[offset:offset + CHUNK_BYTES]
            final = offset + len(chunk) >= len(data)
            self._run('put-file', {'path': path, 'offset': offset, 'dataB64': to_text(base64.b64encode(chunk)), 'final': final})
            offset += len(chunk)
            if final:
                return

    # ---- the connection API ----------------------------------------------------------------------------

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        display.vvv('EXEC %s' % cmd, host=self.get_option('machine'))
        payload = {'cmdB64': to_text(base64.b64encode(to_bytes(cmd)))}
        if in_data:
            data = to_bytes(in_data)
            if len(data) <= EXEC_STDIN_BYTES:
                payload['stdinB64'] = to_text(base64.b64encode(data))
            else:  # a large module: up as chunks first, then used as stdin (the runner removes it)
                path = '/tmp/.underlay-stdin-%s' % uuid.uuid4().hex
                self._put_bytes(data, path)
                payload['stdinPath'] = path
        task = self._run('exec', payload)
        (out_size, err_size, task_dir), rest = self._header(task.get('output'), 'underlay-exec')
        out_b64, _, err_b64 = rest.partition('\n')
        stdout, stderr = base64.b64decode(out_b64), base64.b64decode(err_b64)
        if len(stdout) < int(out_size):
            stdout = self._fetch_rest(task_dir + '/stdout', stdout, int(out_size))
        if len(stderr) < int(err_size):
            stderr = self._fetch_rest(task_dir + '/stderr', stderr, int(err_size))
        return task.get('exitCode', 255), stdout, stderr

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        display.vvv('PUT %s TO %s' % (in_path, out_path), host=self.get_option('machine'))
        if not os.path.exists(to_bytes(in_path, errors='surrogate_or_strict')):
            raise AnsibleFileNotFound('file or module does not exist: %s' % to_native(in_path))
        with open(to_bytes(in_path, errors='surrogate_or_strict'), 'rb') as f:
            self._put_bytes(f.read(), out_path)

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        display.vvv('FETCH %s TO %s' % (in_path, out_path), host=self.get_option('machine'))
        size, first = self._fetch_range(in_path, 0, CHUNK_BYTES)
        data = self._fetch_rest(in_path, first, size)
        try:
            with open(to_bytes(out_path, errors='surrogate_or_strict'), 'wb') as f:
                f.write(data)
        except (IOError, OSError) as e:
            raise AnsibleError('underlay: cannot write %s: %s' % (to_native(out_path), to_native(e)))

    def reset(self):
        self.close()
