# Underlay dynamic inventory plugin. Apache-2.0.
from __future__ import annotations

DOCUMENTATION = r"""
    name: inventory
    short_description: Underlay central as an inventory source
    description:
        - Reads the whole inventory (groups, group vars and C(_meta.hostvars)) from an Underlay central
          in one request, C(GET /api/v1/inventory).
        - Everything in a host's C(underlay_facts) came from the machine and is marked unsafe, so it is
          never templated. Params and group vars are operator-authored and stay plain.
        - The configuration file name must end in C(underlay.yml) or C(underlay.yaml).
    options:
        plugin:
            description: Must be C(underlay.underlay.inventory).
            required: true
            choices: ['underlay.underlay.inventory']
        url:
            description: The central's base URL.
            type: str
            required: true
            env:
                - name: UNDERLAY_URL
        token:
            description: A bearer token (viewer role is enough).
            type: str
            required: true
            env:
                - name: UNDERLAY_TOKEN
        ca:
            description: PEM file of the CA to trust for the central's certificate (its data dir has ca.pem).
            type: path
            env:
                - name: UNDERLAY_CA
        validate_certs:
            description: Verify the central's TLS certificate.
            type: bool
            default: true
        prefix:
            description: Prefix for every generated group name (default - the central's default).
            type: str
        site:
            description: Only machines of this site.
            type: str
        group:
            description: Only hosts of this group.
            type: str
        timeout:
            description: Request timeout in seconds.
            type: int
            default: 60
"""

EXAMPLES = r"""
# underlay.yml (UNDERLAY_URL, UNDERLAY_TOKEN, UNDERLAY_CA from the environment)
plugin: underlay.underlay.inventory
site: dc1
"""

import json
import ssl
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.utils.unsafe_proxy import wrap_var

try:  # ansible-core 2.19+: strings an inventory plugin sets are not templates unless trusted
    from ansible.template import trust_as_template
except ImportError:  # before 2.19 every plain string is a template already
    trust_as_template = None

UNSAFE_KEY = '__ansible_unsafe'
FACTS = 'underlay_facts'


def _unmark(value, trust=True):
    """
    The central's {"__ansible_unsafe": "text"} markers as unsafe strings. Every other string is
    operator-authored (params, group vars) and stays a template, as it is through the inventory script,
    unless trust is False.
    """
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(UNSAFE_KEY), str):
            return wrap_var(value[UNSAFE_KEY])
        return dict((k, _unmark(v, trust)) for k, v in value.items())
    if isinstance(value, list):
        return [_unmark(v, trust) for v in value]
    if trust and isinstance(value, str) and trust_as_template is not None:
        return trust_as_template(value)
    return value


class InventoryModule(BaseInventoryPlugin):
    NAME = 'underlay.underlay.inventory'

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(('underlay.yml', 'underlay.yaml'))

    def _fetch(self):
        query = dict((k, self.get_option(k)) for k in ('prefix', 'site', 'group') if self.get_option(k) is not None)
        url = self.get_option('url').rstrip('/') + '/api/v1/inventory' + ('?' + urlencode(query) if query else '')
        # Python's own TLS context: ansible's open_url(ca_path=) finds no certificate in a PEM file with
        # CRLF line endings, which is what the central's CA file has.
        context = ssl.create_default_context(cafile=self.get_option('ca'))
        if not self.get_option('validate_certs'):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        req = Request(url, headers={'Authorization': 'Bearer ' + self.get_option('token'), 'Accept': 'application/json'})
        try:
            with urlopen(req, timeout=self.get_option('timeout'), context=context) as res:
                body = res.read()
        except HTTPError as e:  # the token is never part of the message
            raise AnsibleParserError('underlay inventory: GET %s answered HTTP %s' % (url, e.code))
        except Exception as e:
            raise AnsibleParserError('underlay inventory: GET %s failed: %s' % (url, to_native(e)))
        try:
            doc = json.loads(to_text(body, errors='surrogate_or_strict'))
        except ValueError as e:
            raise AnsibleParserError('underlay inventory: %s did not return JSON: %s' % (url, to_native(e)))
        if not isinstance(doc, dict):
            raise AnsibleParserError('underlay inventory: %s did not return an inventory document' % url)
        return doc

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        doc = self._fetch()
        hostvars = (doc.get('_meta') or {}).get('hostvars') or {}
        for name, group in doc.items():
            if name == '_meta' or not isinstance(group, dict):
                continue
            self.inventory.add_group(name)
            for host in group.get('hosts') or []:
                self.inventory.add_host(host, group=name)
            for key, value in (group.get('vars') or {}).items():
                self.inventory.set_variable(name, key, _unmark(value))
        for name, group in doc.items():
            if name == '_meta' or not isinstance(group, dict):
                continue
            for child in group.get('children') or []:
                self.inventory.add_group(child)
                self.inventory.add_child(name, child)
        for host, variables in hostvars.items():
            self.inventory.add_host(host)
            for key, value in variables.items():
                # Machine-reported: unsafe as a whole, even from a central that did not mark it.
                self.inventory.set_variable(host, key, wrap_var(_unmark(value, trust=False)) if key == FACTS else _unmark(value))
