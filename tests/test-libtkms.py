#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# libtkms from Python through the GIR, as an application would use it: key info as
# TkmsKeyInfo objects with plain properties, no GVariant to unpack. Run by test-libtkms.c
# (which starts the daemon) with TKMS_TEST_BUS_ADDRESS, GI_TYPELIB_PATH and LD_LIBRARY_PATH
# set; exit status 0 on success, 77 if PyGObject or the typelib is missing.

import os
import sys

try:
    import gi
    gi.require_version('Tkms', '1.0')
    from gi.repository import GLib, Gio, Tkms
except (ImportError, ValueError) as e:
    print('skip: %s' % e)
    sys.exit(77)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def from_variant():
    info = Tkms.KeyInfo.new_from_variant(GLib.Variant('a{sv}', {
        'name': GLib.Variant('s', 'py-made'),
        'owner': GLib.Variant('u', 1000),
        'type': GLib.Variant('s', 'aes-256-gcm'),
        'protection': GLib.Variant('s', 'sealed'),
        'created': GLib.Variant('t', 1790781120),
        'primary-version': GLib.Variant('u', 2),
        'description': GLib.Variant('s', 'from a dict'),
        'pcrs': GLib.Variant('au', [0, 7]),
        'versions': GLib.Variant('aa{sv}', [
            {'version': GLib.Variant('u', 1), 'state': GLib.Variant('s', 'deactivated'),
             'created': GLib.Variant('t', 1790781120)},
            {'version': GLib.Variant('u', 2), 'state': GLib.Variant('s', 'active'),
             'created': GLib.Variant('t', 1790781180)},
        ]),
        'future-member': GLib.Variant('s', 'kept'),
    }))
    check(info.props.name == 'py-made', 'name')
    check(info.props.owner == 1000, 'owner')
    check(info.props.type == 'aes-256-gcm', 'type property')
    check(info.get_key_type() == 'aes-256-gcm', 'get_key_type')
    check(info.props.protection == 'sealed', 'protection')
    check(info.props.created == 1790781120, 'created')
    check(info.props.primary_version == 2, 'primary-version')
    check(info.props.state == 'active', 'state is the primary version\'s')
    check(info.props.description == 'from a dict', 'description')
    check(list(info.get_pcrs()) == [0, 7], 'pcrs')
    versions = info.get_versions()
    check([v.props.version for v in versions] == [1, 2], 'versions')
    check([v.props.state for v in versions] == ['deactivated', 'active'], 'version states')
    check(versions[1].props.created == 1790781180, 'version created')
    check(info.get_variant().lookup_value('future-member', None).get_string() == 'kept',
          'unknown members stay readable')

    # a password key: its spec, the rotation running and the last one, the stages
    pw = Tkms.KeyInfo.new_from_variant(GLib.Variant('a{sv}', {
        'name': GLib.Variant('s', 'py-db'),
        'type': GLib.Variant('s', 'password'),
        'policy': GLib.Variant('a{sv}', {'hook': GLib.Variant('s', 'postgresql')}),
        'password': GLib.Variant('a{sv}', {'length': GLib.Variant('u', 24),
                                           'charset': GLib.Variant('s', 'hex'),
                                           'exclude': GLib.Variant('s', '')}),
        'rotation': GLib.Variant('a{sv}', {'step': GLib.Variant('s', 'set'),
                                           'version': GLib.Variant('u', 2),
                                           'started': GLib.Variant('t', 1790781300)}),
        'last-rotation': GLib.Variant('a{sv}', {'result': GLib.Variant('s', 'ok'),
                                                'step': GLib.Variant('s', 'finish'),
                                                'time': GLib.Variant('t', 1790781200),
                                                'version': GLib.Variant('u', 1)}),
        'versions': GLib.Variant('aa{sv}', [
            {'version': GLib.Variant('u', 1), 'state': GLib.Variant('s', 'active'),
             'created': GLib.Variant('t', 1790781120), 'stage': GLib.Variant('s', 'current')},
            {'version': GLib.Variant('u', 2), 'state': GLib.Variant('s', 'pre-active'),
             'created': GLib.Variant('t', 1790781300), 'stage': GLib.Variant('s', 'pending')},
        ]),
    }))
    check(pw.props.rotation_hook == 'postgresql', 'rotation-hook')
    check(pw.props.password_length == 24 and pw.props.password_charset == 'hex' and
          pw.props.password_exclude == '', 'password spec')
    check(pw.props.rotation_step == 'set' and pw.get_rotation_version() == 2, 'rotation')
    check(pw.props.last_rotation_result == 'ok' and pw.props.last_rotation_reason is None,
          'last rotation')
    check([v.props.stage for v in pw.get_versions()] == ['current', 'pending'], 'stages')
    check(info.props.password_length == 0 and info.props.rotation_step is None,
          'an aes key has no password members')

    # a dictionary that is no key info is an error, not an object with holes
    for bad in ({'owner': GLib.Variant('u', 1)},
                {'name': GLib.Variant('s', 'x'), 'owner': GLib.Variant('s', 'root')}):
        try:
            Tkms.KeyInfo.new_from_variant(GLib.Variant('a{sv}', bad))
        except GLib.Error as e:
            check(e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.INVALID_DATA), str(e))
        else:
            raise AssertionError('accepted %r' % bad)


def against_daemon(address):
    conn = Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
        Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    client = Tkms.Client.new_sync(conn, None)
    prefix = 'py-%d-' % os.getpid()
    names = ['%s%d' % (prefix, i) for i in range(5)]

    for name in names:
        info = client.generate_key_sync(name, 'hmac-sha256', None, None)
        check(info.props.name == name, 'generated name')
        check(info.props.type == 'hmac-sha256', 'generated type')
        check(info.props.owner == os.getuid(), 'owner is the caller')
        check(info.props.state == 'active', 'a new key is active')

    info = client.lookup_key_sync(names[0], None)
    check(info.props.protection == 'tpm', 'hmac keys never leave the TPM')
    check(len(info.get_versions()) == 1, 'one version')

    # page by page: 2 at a time, tokens until an empty one
    seen, token, pages = [], '', 0
    while True:
        keys, token = client.list_keys_page_sync(token, 2, None)
        check(len(keys) <= 2, 'page size respected')
        seen += [k.props.name for k in keys]
        pages += 1
        if token == '':
            break
    check(pages >= 3, 'five keys in pages of two take three pages or more')
    check(all(n in seen for n in names), 'every key on some page')
    check(len(seen) == len(set(seen)), 'no key on two pages')

    everything = client.collect_keys_sync(False, 2, None)
    check(sorted(k.props.name for k in everything) == sorted(seen), 'collect = pages')

    # envelope encryption from Python: both out arguments, the wrapped key decrypts
    client.generate_key_sync(prefix + 'aes', 'aes-256-gcm', None, None)
    context = GLib.Bytes.new(b'py-context')
    ok, key, wrapped = client.generate_data_key_sync(prefix + 'aes', 32, context, None)
    check(ok and len(key.get_data()) == 32, 'a 32-byte data key')
    back = client.decrypt_sync(prefix + 'aes', wrapped, context, None)
    check(back.get_data() == key.get_data(), 'the wrapped key decrypts to the data key')
    rewrapped = client.re_encrypt_sync(prefix + 'aes', wrapped, context, None)
    check(client.decrypt_sync(prefix + 'aes', rewrapped, context, None).get_data() ==
          key.get_data(), 'rewrapped')

    # the life cycle from Python: rotate, a policy, the typed members of the versions
    version = client.rotate_key_sync(prefix + 'aes', None)
    check(version == 2, 'rotate_key returns the new version: %r' % version)
    client.set_rotation_policy_sync(prefix + 'aes', 3600, 0, 60, 0, None)
    info = client.lookup_key_sync(prefix + 'aes', None)
    check(info.props.primary_version == 2 and info.props.rotation_period == 3600 and
          info.props.deactivate_after == 60, 'rotated, policy set')
    check(info.get_next_rotation() > 0, 'a next rotation')
    v1 = [v for v in info.get_versions() if v.props.version == 1][0]
    check(v1.props.superseded > 0 and v1.get_uses() == v1.props.uses, 'version 1 superseded')

    # a password key from Python: the secret as GLib.Bytes, both ways, and its stages
    opts = GLib.Variant('a{sv}', {'length': GLib.Variant('u', 20),
                                  'charset': GLib.Variant('s', 'base64url')})
    pw = client.generate_key_sync(prefix + 'pw', 'password', opts, None)
    check(pw.props.password_length == 20 and pw.props.password_charset == 'base64url',
          'password spec')
    generated = client.get_secret_sync(prefix + 'pw', None, None).get_data()
    check(len(generated) == 20, 'a 20-character password: %r' % len(generated))
    version = client.import_secret_sync(prefix + 'pw', GLib.Bytes.new(b'from python'), None)
    check(version == 2, 'import_secret returns the new version: %r' % version)
    check(client.get_secret_sync(prefix + 'pw', 'current', None).get_data() == b'from python',
          'the imported password is current')
    check(client.get_secret_sync(prefix + 'pw', 'previous', None).get_data() == generated,
          'the generated one is previous')
    info = client.lookup_key_sync(prefix + 'pw', None)
    check([v.props.stage for v in info.get_versions()] == ['previous', 'current'], 'stages')

    try:
        client.lookup_key_sync(prefix + 'missing', None)
    except GLib.Error as e:
        check(e.matches(Tkms.error_quark(), 0), 'NotFound is TKMS_ERROR_NOT_FOUND: %s' % e)
    else:
        raise AssertionError('a missing key was found')


from_variant()
if os.environ.get('TKMS_TEST_BUS_ADDRESS'):
    against_daemon(os.environ['TKMS_TEST_BUS_ADDRESS'])
print('ok')
