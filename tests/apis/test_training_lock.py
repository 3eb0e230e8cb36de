import errno
import fcntl

import lcp.io as lcp_io
from lcp.apis.training_lock import LOCK_FILE, training_lock


def test_a_work_dir_without_flock_trains_on_with_one_warning(tmp_path, monkeypatch, capsys):
    """On a file system without flock (a Lustre `noflock`, an NFS mount without lockd: ENOLCK) the
    training goes on unlocked, said once per process (not again for the next training's lock)."""

    def no_flock(file, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    monkeypatch.setattr(lcp_io, "_said_no_flock", False)
    trained = []
    for work_dir in (tmp_path / "a", tmp_path / "b"):
        with training_lock(work_dir):
            trained.append(work_dir)
    assert trained == [tmp_path / "a", tmp_path / "b"]
    err = capsys.readouterr().err
    assert err.count("this file system has no flock") == 1 and f"{tmp_path / 'a' / LOCK_FILE}: warning:" in err
