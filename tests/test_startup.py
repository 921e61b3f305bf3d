"""Starting the command line: importing the package is light, and Ctrl-C during start-up is one line."""

import signal
import subprocess
import sys
import time


def test_importing_the_package_does_not_import_torch():
    code = "import sys, cnnlineage; print('torch' in sys.modules); print(cnnlineage.create_model.__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "create_model"]


def test_ctrl_c_while_starting_up_ends_quietly():
    for delay in (0.05, 0.3):  # while Python imports the command line and torch
        p = subprocess.Popen(
            [sys.executable, "-m", "cnnlineage", "list"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
        if p.returncode == 0:  # it finished before the signal arrived: nothing to check
            continue
        if "cnnlineage" not in err:  # on a loaded machine the signal can land in the interpreter's own
            continue  # start-up, before any line of cnnlineage runs: nothing of ours to check
        assert "Traceback" not in err, err
        assert p.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"
