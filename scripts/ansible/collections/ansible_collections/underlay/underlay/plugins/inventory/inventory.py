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
        - C(compose), C(groups) and C(keyed_groups) work as in other constructed inventory plugins.
        - With C(cache) on, the document is kept with its ETag and the central is asked with
          C(If-None-Match); an unchanged inventory is a C(304) without a body.
    extends_documentation_fragment:
        - constructed
        - inventory_cache
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
            description: A bearer token (viewer role is enough). Never logged.
            type: str
            env:
                - name: UNDERLAY_TOKEN
        token_file:
            description: A file whose first line is the token (instead of I(token)).
            type: path
            env:
                - name: UNDERLAY_TOKEN_FILE
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
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/underlay-ansible
keyed_groups:
  - key: underlay_facts.cpu.vendor | default('unknown')
    prefix: cpu
compose:
  ansible_connection: "'underlay.underlay.agent'"
"""

from urllib.parse import urlencode

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var
from ansible_collections.underlay.underlay.plugins.plugin_utils.api import UnderlayApi, UnderlayApiError, read_token

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


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = 'underlay.underlay.inventory'

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(('underlay.yml', 'underlay.yaml'))

    def _fetch(self, cached):
        """The inventory document; `cached` ({etag, doc}) is sent as If-None-Match and reused on a 304."""
        query = dict((k, self.get_option(k)) for k in ('prefix', 'site', 'group') if self.get_option(k) is not None)
        path = '/api/v1/inventory' + ('?' + urlencode(query) if query else '')
        token = read_token(self.get_option('token'), self.get_option('token_file'))
        if not token:
            raise AnsibleParserError('underlay inventory: no token (set UNDERLAY_TOKEN or UNDERLAY_TOKEN_FILE)')
        headers = {'If-None-Match': cached['etag']} if cached and cached.get('etag') else {}
        api = None
        try:  # the token is never part of a message
            api = UnderlayApi(self.get_option('url'), token, self.get_option('ca'), self.get_option('validate_certs'), self.get_option('timeout'))
            status, hdrs, doc = api.json('GET', path, expect=(200, 304), headers=headers)
        except UnderlayApiError as e:
            raise AnsibleParserError('underlay inventory: %s' % to_native(e))
        finally:
            if api is not None:
                api.close()
        if status == 304:
            self.display.vvv('underlay inventory: unchanged (ETag %s), from the cache' % cached['etag'])
            return cached
        if not isinstance(doc, dict):
            raise AnsibleParserError('underlay inventory: %s did not return an inventory document' % path)
        return {'etag': hdrs.get('etag'), 'doc': doc}

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option('cache') and cache
        update_cache = self.get_option('cache')
        cached = None
        if use_cache:
            try:
                cached = self._cache[cache_key]
            except KeyError:
                cached = None
        fetched = self._fetch(cached if isinstance(cached, dict) else None)
        if update_cache and fetched is not cached:
            self._cache[cache_key] = fetched
        self._populate(fetched['doc'])

    def _populate(self, doc):
        strict = self.get_option('strict')
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
            # compose / groups / keyed_groups, over the host's variables as Ansible sees them
            hv = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option('compose'), hv, host, strict=strict)
            hv = self.inventory.get_host(host).get_vars()
            self._add_host_to_composed_groups(self.get_option('groups'), hv, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), hv, host, strict=strict)
