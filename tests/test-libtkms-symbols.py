#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The ABI of libtkms is what client/libtkms.map lists: the exported symbols of the built
# library (nm -D --defined-only) must be exactly those, the generated tkms_dbus_* code must
# stay hidden, and every function the GIR describes must be exported (a public function
# missing from the map would be unusable). TAP output.
#   test-libtkms-symbols.py LIBTKMS.so LIBTKMS.map [Tkms-1.0.gir]

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

ALLOWED = re.compile(r'^tkms_(client|error|key_info|key_version_info)_\w+$')

results = []


def check(ok, what, detail=''):
    results.append((ok, what, detail))


def exported(lib):
    out = subprocess.run(['nm', '-D', '--defined-only', lib], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            names.add(parts[2].split('@')[0])
    return names


def map_symbols(path):
    text = re.sub(r'/\*.*?\*/', '', open(path).read(), flags=re.S)
    m = re.search(r'global:(.*?)local:', text, flags=re.S)
    return {s.strip() for s in m.group(1).split(';') if s.strip()}


def gir_functions(path):
    ns = {'core': 'http://www.gtk.org/introspection/core/1.0',
          'c': 'http://www.gtk.org/introspection/c/1.0'}
    root = ET.parse(path).getroot()
    ident = '{%s}identifier' % ns['c']
    names = set()
    for tag in ('function', 'method', 'constructor'):
        for el in root.iter('{%s}%s' % (ns['core'], tag)):
            if el.get(ident):
                names.add(el.get(ident))
    for el in root.iter():
        if el.get('{http://www.gtk.org/introspection/glib/1.0}get-type'):
            names.add(el.get('{http://www.gtk.org/introspection/glib/1.0}get-type'))
    return names


def main():
    if shutil.which('nm') is None:
        print('1..0 # SKIP nm (binutils) is not installed')
        return 77
    lib, mapfile = sys.argv[1], sys.argv[2]
    have = exported(lib)
    want = map_symbols(mapfile)

    check(have == want, 'the exported symbols are exactly the map',
          'exported, not in the map: %s; in the map, not exported: %s'
          % (sorted(have - want), sorted(want - have)))
    dbus = sorted(s for s in have if s.startswith('tkms_dbus_'))
    check(not dbus, 'no generated tkms_dbus_* symbol is exported', ', '.join(dbus))
    bad = sorted(s for s in want if not ALLOWED.match(s))
    check(not bad, 'the map lists only tkms_client_*, tkms_error_*, tkms_key_info_*, '
          'tkms_key_version_info_*', ', '.join(bad))
    if len(sys.argv) > 3:
        gir = gir_functions(sys.argv[3])
        missing = sorted(gir - have)
        check(not missing, 'every function of the GIR is exported', ', '.join(missing))

    print('1..%d' % len(results))
    failed = 0
    for i, (ok, what, detail) in enumerate(results, 1):
        print('%s %d - %s' % ('ok' if ok else 'not ok', i, what))
        if not ok:
            failed += 1
            print('# ' + detail)
    print('# %d symbols exported' % len(have))
    return 1 if failed else 0


sys.exit(main())
