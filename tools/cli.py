"""The command-line plumbing of ``launch.py`` and the tools: absl flags, one-line errors, INFO logs.

Every command of the repository parses absl flags. A bad or missing flag, or an unexpected
argument, is one line on stderr, ``error: ...``, and exit status 2; an error that the library
reports (ValueError, OSError, gen_jax.data.DatasetError, gen_jax.checkpoint.CheckpointError,
gen_jax.train.TrainingDivergedError) is ``error: ...`` and exit status 1, not a traceback.
Progress is logged at INFO, without the INFO lines of orbax/TFDS/JAX internals.

``launch.py`` runs under ``absl.app`` with the global ``flags.FLAGS`` (its ``--helpfull``, absl
logging) and parses them with :func:`parse_flags`. A tool defines its flags on a
``flags.FlagValues()`` of its own and runs through :func:`run`: tools whose flags share a name
(``--config``, ``--out``) can then be imported by one process, and a test can call a tool's
``main(argv)`` and read its exit status.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Callable, Optional, Sequence

from absl import app, flags

HELP_FLAGS = ("-h", "-help", "--help", "--helpshort", "--helpfull", "-?")
_LIBRARY_ERRORS = (("gen_jax.data", "DatasetError"), ("gen_jax.checkpoint", "CheckpointError"),
                   ("gen_jax.train", "TrainingDivergedError"))


class QuietLibraries(logging.Filter):
  """Keeps INFO lines of orbax/TFDS/JAX internals out of the progress log (warnings still pass)."""
  _NOISY = ("orbax", "tensorflow_datasets", "jax/_src", "absl/logging")

  def filter(self, record):
    return record.levelno >= logging.WARNING or not any(n in record.pathname for n in self._NOISY)


def flag_error(argv: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS
               ) -> tuple[Optional[list[str]], Optional[str]]:
  """Parses ``argv`` (program name first) into ``flag_values``: (the remaining arguments, None),
  or (None, the message) for a bad flag or config override."""
  try:
    return flag_values(list(argv)), None
  except (flags.Error, KeyError, AttributeError, ValueError, TypeError) as e:
    # ml_collections reports an unknown field as an AttributeError wrapping a KeyError whose
    # message already says 'Did you mean ...'.
    inner = e.__context__ if isinstance(e.__context__, KeyError) else None
    msg = f"unknown config field {inner.args[0]}" if inner is not None and inner.args else e
    return None, str(msg)


def parse_flags(argv: Sequence[str], flag_values: flags.FlagValues = flags.FLAGS, *,
                hint: str = "") -> list[str]:
  """absl's parser, for ``app.run(main, flags_parser=...)``: a bad flag or config override is
  ``error: ...`` (then ``hint`` on its own line, if given) on stderr and exit status 2."""
  rest, msg = flag_error(argv, flag_values)
  if msg is not None:
    print(f"error: {msg}" + (f"\n{hint}" if hint else ""), file=sys.stderr)
    sys.exit(2)
  return rest


def library_errors() -> tuple[type[BaseException], ...]:
  """The exceptions by which the library reports a user's mistake or a missing input. The gen_jax
  modules are looked up, not imported: one that was never imported raised nothing."""
  errors: list[type[BaseException]] = [ValueError, OSError]
  for module, name in _LIBRARY_ERRORS:
    if module in sys.modules:
      errors.append(getattr(sys.modules[module], name))
  return tuple(errors)


def _usage(flag_values: flags.FlagValues, doc: Optional[str]) -> str:
  return ((doc or "").strip() + "\n\nflags:\n" + flag_values.get_help()).strip() + "\n"


def run_recording_command(main: Callable[..., Optional[int]], flag_values: flags.FlagValues,
                          argv: Optional[Sequence[str]] = None, *, doc: Optional[str] = None,
                          program: str) -> int:
  """:func:`run` for a tool whose cards record how they were made: ``main`` also gets
  ``command=`` (``python <program> <argv>``)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  command = " ".join(["python", program, *argv])
  return run(functools.partial(main, command=command), flag_values, argv, doc=doc,
             program=program)


def run(main: Callable[[list[str]], Optional[int]], flag_values: flags.FlagValues,
        argv: Optional[Sequence[str]] = None, *, doc: Optional[str] = None,
        program: Optional[str] = None,
        errors: tuple[type[BaseException], ...] = ()) -> int:
  """Parses ``argv`` (the arguments after the program name; default ``sys.argv[1:]``) into
  ``flag_values``, then calls ``main`` with the program name and the positional arguments, with
  INFO logging on stderr. Returns the exit status: 0 (or ``main``'s), 2 for a bad flag or
  argument (``app.UsageError``), 1 for a :func:`library_errors` exception or one of ``errors``.

  ``--help`` prints ``doc`` (the tool's module docstring) and the flags. Flags are reset to their
  defaults first, so that ``run`` can be called again in one process.
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  program = program or sys.argv[0]
  if any(a in HELP_FLAGS for a in argv[:argv.index("--") if "--" in argv else len(argv)]):
    print(_usage(flag_values, doc), end="")
    return 0
  for name in list(flag_values):  # (FlagValues.unparse_flags would log through the bare root
    flag_values[name].unparse()   # logger, which gives it a second, unfiltered handler)
  rest, msg = flag_error([program, *argv], flag_values)
  if msg is not None:
    print(f"error: {' '.join(msg.split())} (--help lists the flags)", file=sys.stderr)
    return 2
  root = logging.getLogger()
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
  handler.addFilter(QuietLibraries())
  level = root.level
  root.addHandler(handler)
  root.setLevel(logging.INFO)
  try:
    return main(rest) or 0
  except app.UsageError as e:
    print(f"error: {e} (--help lists the flags)", file=sys.stderr)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    if not isinstance(e, library_errors() + tuple(errors)):
      raise
    print(f"error: {e}", file=sys.stderr)
    return 1
  finally:
    root.removeHandler(handler)
    root.setLevel(level)


def no_arguments(argv: Sequence[str]) -> None:
  """Raises ``app.UsageError`` for positional arguments (``argv`` is program name first)."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
