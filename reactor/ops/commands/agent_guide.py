"""``reactor agent-guide --stage S [--comp C] [--repo O/R | --config FILE]``: the standing
instruction for one stage's agent, as Markdown to paste into ``AGENTS.md`` or a workflow's
prompt.

The text comes from :mod:`reactor.core.guide`, built from the rules the reactor enforces and the
repository's config: with ``--repo`` the config in force, read through the App as the workers
read it (:func:`reactor.shell.repoconfig.load`: Redis's cached copy, else the contents API);
with ``--config`` a local ``.github/reactor.yml``; with neither, the defaults. A config that
does not parse is an error rather than a guide: the reactor meanwhile keeps its last good
config, and a guide should describe the file once it is fixed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from reactor.core.config import DEFAULT_CONFIG, RepoConfig, RepoConfigError, parse_config
from reactor.core.errors import ConfigError
from reactor.core.guide import agent_guide as guide_text
from reactor.core.labels import LabelKind, comp_label, parse_label
from reactor.core.terminal import printable
from reactor.core.yaml_bounded import MAX_BYTES
from reactor.ops.commands.status import app_context, locate_repo, repo_name
from reactor.process.settings import Settings

if TYPE_CHECKING:

    pass


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``agent-guide`` to ``reactor``'s subcommands."""
    about = ("print the standing instruction for one stage's agent (Markdown, for AGENTS.md "
             "or a prompt), built from the rules the reactor enforces and the repository's "
             "config")
    parser = subparsers.add_parser("agent-guide", help=about, description=about)
    parser.add_argument("--stage", required=True, metavar="S",
                        help="the agent's stage (one of the config's stages)")
    parser.add_argument("--comp", type=comp_name, metavar="C",
                        help="the competition it works on (default: a <comp> placeholder)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--repo", type=repo_name, metavar="O/R",
                        help="read the repository's .github/reactor.yml through the App, as "
                             "the reactor does (needs the App's settings and REDIS_URL)")
    source.add_argument("--config", type=Path, metavar="FILE",
                        help="read a local .github/reactor.yml (default: neither; the "
                             "default config)")
    parser.set_defaults(run=agent_guide)
    return parser


def agent_guide(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``reactor agent-guide`` (the parser's ``run``)."""
    if args.repo is not None:
        config = asyncio.run(_read_repo(args.repo, settings))
        source = f"the config of {args.repo} (its `.github/reactor.yml`, or the defaults)"
    elif args.config is not None:
        config, source = read_file(args.config), f"`{args.config}`"
    else:
        config, source = DEFAULT_CONFIG, "the default config (no `.github/reactor.yml` read)"
    text = guide_text(config, args.stage.strip().casefold(), comp=args.comp, source=source)
    sys.stdout.write("".join(f"{printable(line)}\n" for line in text.splitlines()))
    return 0


def comp_name(text: str) -> str:
    """``--comp``: a competition name as a ``comp:`` label holds it (argparse type)."""
    folded = text.strip().casefold()
    label = parse_label(comp_label(folded))
    if label.kind is not LabelKind.COMP or ":" in folded or printable(folded) != folded:
        raise argparse.ArgumentTypeError(f"not a competition name: {printable(text)!r}")
    return folded


def read_file(path: Path) -> RepoConfig:
    """A local ``.github/reactor.yml``, parsed as the reactor parses it."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
        return parse_config(raw.decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except RepoConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


async def _read_repo(full_name: str, settings: Settings) -> RepoConfig:
    """The config in force for ``full_name``, read through the App."""
    from reactor.shell import repoconfig

    settings.require_app()
    settings.require_redis_url()
    # A malformed file is this command's one error line; the workers' log line would repeat it.
    repoconfig.log.addHandler(logging.NullHandler())
    async with app_context(settings) as ctx:
        gh, repo, _ = await locate_repo(ctx, full_name)
        config, problem = await repoconfig.load(ctx.redis, gh, repo)
    if problem is not None:
        raise ConfigError(f"{full_name}: {problem.text} (the reactor keeps its last good "
                          "config until the file is fixed)")
    return config
