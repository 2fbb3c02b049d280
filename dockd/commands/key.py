"""``dockd key show``: the dock's public checkpoint key."""

from __future__ import annotations

import argparse

from dockd.commands.common import add_config_options, add_json_option, config_from_args, print_json
from dockd.store.keys import fingerprint, load_or_create_signer


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("key", help="the dock's checkpoint signing key")
    keysub = p.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    show = keysub.add_parser("show", help="print the public key (created on first use)")
    add_config_options(show)
    add_json_option(show)
    show.set_defaults(func=run_show)


def run_show(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    signer = load_or_create_signer(config.dock.signing_key_path)
    info = {"dock": config.dock.id, "algorithm": "ed25519", "public_key": signer.public_key_hex,
            "fingerprint": fingerprint(signer.public_key_hex),
            "key_file": str(config.dock.signing_key_path)}
    if args.json:
        print_json(info)
    else:
        print(f"ed25519 {signer.public_key_hex}  dock={config.dock.id}  "
              f"fingerprint={info['fingerprint']}")
    return 0
