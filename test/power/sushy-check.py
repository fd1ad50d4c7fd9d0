"""Drives the Redfish stand-in with the real Redfish client library (python3-sushy), as a real client
would: argv = URL CA_FILE USER PASSWORD ACTION... ; prints one JSON line per action."""
import json
import sys

import sushy

url, ca, user, password, *actions = sys.argv[1:]
conn = sushy.Sushy(url, username=user, password=password, verify=ca)
system = conn.get_system(conn.get_system_collection().members_identities[0])
for action in actions:
    system.refresh()
    if action == 'status':
        print(json.dumps({'power': getattr(system.power_state, 'value', system.power_state)}))
    elif action == 'on':
        system.reset_system(sushy.RESET_ON)
        print(json.dumps({'done': 'on'}))
    elif action == 'off':
        system.reset_system(sushy.RESET_FORCE_OFF)
        print(json.dumps({'done': 'off'}))
    elif action == 'pxe-once':
        system.set_system_boot_options(sushy.BOOT_SOURCE_TARGET_PXE, enabled=sushy.BOOT_SOURCE_ENABLED_ONCE)
        print(json.dumps({'done': 'pxe-once'}))
    elif action == 'allowed-resets':
        print(json.dumps({'resets': sorted(getattr(v, 'value', v) for v in system.get_allowed_reset_system_values())}))
sys.stdout.flush()
