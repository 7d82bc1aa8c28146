"""The runner: units computed once, checkpointed in the run directory, dispatched where
the study run in progress says."""

from elbolab.cluster import Serial
from elbolab.report import RunDir
from elbolab.studies.runner import cached, cached_map, dispatching


class Recording(Serial):
    """A serial dispatcher that remembers which units it was given."""

    def __init__(self):
        super().__init__("recording")
        self.given = []

    def map(self, units):
        self.given.append(list(units))
        return super().map(units)


def test_cached_map_runs_only_what_has_no_checkpoint(tmp_path):
    rundir = RunDir(tmp_path / "run")
    calls = []

    def unit(i):
        return lambda: calls.append(i) or i * 10

    units = {f"u{i}": unit(i) for i in range(3)}
    assert cached_map(rundir, units) == {"u0": 0, "u1": 10, "u2": 20}
    rundir.save_checkpoint("u1", {"value": "from the checkpoint", "seconds": 7.0})
    (rundir.checkpoints / "u2.pkl").unlink()
    timings = {}
    assert cached_map(rundir, units, timings) == {"u0": 0, "u1": "from the checkpoint", "u2": 20}
    assert calls == [0, 1, 2, 2]
    assert list(timings) == ["u0_seconds", "u1_seconds", "u2_seconds"]
    assert timings["u1_seconds"] == 7.0


def test_units_go_to_the_dispatcher_of_the_enclosing_block(tmp_path):
    rundir = RunDir(tmp_path / "run")
    recording = Recording()
    with dispatching(recording):
        cached_map(rundir, {"a": lambda: 1, "b": lambda: 2})
        cached(rundir, "c", lambda: 3)  # one step: always in this process
    cached_map(rundir, {"d": lambda: 4})  # outside the block: serial
    assert recording.given == [["a", "b"]]
    assert cached(rundir, "c", lambda: "not run again") == 3
