"""``dockd key show``: the dock's public checkpoint key; ``dockd key rotate``: a new key,
vouched for by the old one (custody ``key.rotated``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dockd.clock import SystemClock
from dockd.commands.common import add_config_options, add_json_option, config_from_args, print_json
from dockd.commands.helptext import ROLE_CODES, epilog
from dockd.errors import ConfigError
from dockd.i18n import _
from dockd.identity import Role, actor
from dockd.store.key_rotation import rotate_key
from dockd.store.keys import fingerprint, load_signer
from dockd.store.queries import require_existing_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("key", help=_("the dock's checkpoint signing key"))
    keysub = p.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    show = keysub.add_parser("show", help=_("print the public key (never creates one)"),
                             epilog=epilog(["dockd key show", "dockd key show --json"],
                                           ROLE_CODES))
    add_config_options(show)
    add_json_option(show)
    show.set_defaults(func=run_show, role=Role.AUDIT)
    rotate = keysub.add_parser(
        "rotate", help=_("give the store a new signing key, signed by the old one (key.rotated)"),
        epilog=epilog(["dockd key rotate",
                       "dockd key rotate --old-key /root/old-signing.key",
                       "dockd key rotate --old-key-lost"], ROLE_CODES))
    group = rotate.add_mutually_exclusive_group()
    group.add_argument("--old-key", metavar="PATH", type=Path,
                       help=_("the store's current key file, when it is not at dock.signing_key"))
    group.add_argument("--old-key-lost", action="store_true",
                       help=_("the old key is gone: record the rotation without its signature"))
    add_config_options(rotate)
    add_json_option(rotate)
    rotate.set_defaults(func=run_rotate, role=Role.ADMIN)


def run_show(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    path = config.dock.signing_key_path
    signer = load_signer(path)
    if signer is None:
        raise ConfigError(_("no signing key at {path} (the store makes it when first opened;"
                            " 'key show' never does)").format(path=path))
    info = {"dock": config.dock.id, "algorithm": "ed25519", "public_key": signer.public_key_hex,
            "fingerprint": fingerprint(signer.public_key_hex), "key_file": str(path)}
    if args.json:
        print_json(info)
    else:
        print(f"ed25519 {signer.public_key_hex}  dock={config.dock.id}  "
              f"fingerprint={info['fingerprint']}")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    require_existing_store(config.dock.store_dir)
    done = rotate_key(config, SystemClock(), actor(), args.old_key, args.old_key_lost)
    info = {"seq": done.seq, "old_public_key": done.old_public_key,
            "new_public_key": done.new_public_key, "old_key_signed": done.old_key_signed,
            "new_fingerprint": fingerprint(done.new_public_key),
            "retired_key_file": str(done.retired_key_file) if done.retired_key_file else None}
    if args.json:
        print_json(info)
    else:
        vouched = "signed by the old key" if done.old_key_signed else "NOT signed by the old key"
        print(f"key.rotated at seq {done.seq}: {fingerprint(done.old_public_key)} -> "
              f"{info['new_fingerprint']} ({vouched})")
        if done.retired_key_file:
            print(f"old key kept as {done.retired_key_file}")
    return 0
