"""The commands of tools/: absl flags, a bad flag is one line and exit status 2, library errors 1."""

import subprocess
import sys

import pytest

from conftest import ROOT

TOOLS = ("cards", "export_network", "inception_fid", "inception_weights")


def _tool(name, *args):
  return subprocess.run([sys.executable, f"tools/{name}.py", *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)


@pytest.mark.parametrize("name", TOOLS)
def test_a_bad_flag_is_one_line_and_exit_status_2(name):
  r = _tool(name, "--no_such_flag=1")
  assert r.returncode == 2, r.stderr
  assert r.stderr.splitlines() == [
      "error: Unknown command line flag 'no_such_flag' (--help lists the flags)"]
  assert r.stdout == ""


def test_help_lists_the_flags_and_the_usage():
  r = _tool("export_network", "--help")
  assert r.returncode == 0 and r.stderr == ""
  assert "python tools/export_network.py --config=" in r.stdout
  for flag in ("--config", "--workdir", "--name", "--step", "--out_dir", "--[no]skip_accuracy"):
    assert flag in r.stdout


def test_missing_required_flag_and_stray_argument_are_usage_errors(capsys):
  from tools import inception_fid  # pylint: disable=import-outside-toplevel
  assert inception_fid.main([]) == 2
  assert inception_fid.main(["--fake=mnist:train", "stray"]) == 2
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 2 and "--fake must have a value" in err[0] and "stray" in err[1]


def test_a_library_error_is_one_line_and_exit_status_1(tmp_path, monkeypatch, capsys):
  from tools import inception_fid  # pylint: disable=import-outside-toplevel
  monkeypatch.setenv("GEN_JAX_CACHE_DIR", str(tmp_path))
  assert inception_fid.main(["--fake=mnist:train", "--num_fake=10"]) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: Inception FID weights not found") and len(err.splitlines()) == 1
  assert "python tools/inception_weights.py" in err


def test_tools_that_share_flag_names_run_in_one_process(capsys):
  """Each tool parses its own flags.FlagValues: --out of two tools, reset between calls."""
  from tools import inception_fid, inception_weights  # pylint: disable=import-outside-toplevel
  assert inception_weights.main(["--out=/nonexistent/x", "--torchscript=/nonexistent.pt"]) == 1
  assert inception_weights.FLAGS.out == "/nonexistent/x"
  assert inception_fid.main(["--help"]) == 0
  assert inception_weights.main(["stray"]) == 2
  assert inception_weights.FLAGS.out is None   # not left over from the first call
  capsys.readouterr()
