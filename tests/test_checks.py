"""The ground floor's checks: count matrices (Corpus, Corpus.from_sklearn, LDA), lists, output
files."""

import numpy as np
import pytest
import scipy.sparse as sp

from elbolab import checks
from elbolab.errors import ConfigError, DataError


def test_count_matrix_is_canonical_and_never_the_callers():
    # Unsorted indices, a duplicate entry and a stored zero, as other libraries make them.
    given = sp.csr_matrix(
        (np.array([2, 1, 0, 3]), np.array([2, 0, 1, 0]), np.array([0, 3, 4])), shape=(2, 3)
    )
    before = (given.data.copy(), given.indices.copy(), given.indptr.copy())
    out = checks.count_matrix(given, "X")
    np.testing.assert_array_equal(out.toarray(), [[1, 0, 2], [3, 0, 0]])
    assert out.has_canonical_format and out.nnz == 3 and out.dtype == np.int64
    for array, old in zip((given.data, given.indices, given.indptr), before, strict=True):
        np.testing.assert_array_equal(array, old)


def test_count_matrix_accepts_whole_floats_and_keeps_int32():
    assert checks.count_matrix([[1.0, 0.0], [0.0, 2.0]], "X").dtype == np.int64
    assert checks.count_matrix(np.ones((1, 2), np.int32), "X").dtype == np.int32


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    "value, reason",
    [(-1, "is a negative count"), (0.5, "is a non-integer count"), (np.inf, "NaN or infinite"),
     (2.0**60, "above 2\\*\\*53")],
)  # fmt: skip
def test_count_matrix_names_the_bad_entry(value, reason, sparse):
    counts = np.ones((2, 3))
    counts[1, 2] = value
    with pytest.raises(ConfigError, match=rf"X\[1, 2\] = .* {reason}"):
        checks.count_matrix(sp.csr_matrix(counts) if sparse else counts, "X", ConfigError)


@pytest.mark.parametrize(
    "value, message",
    [(None, "X must be a 2-D .* got None"), (np.ones(3), r"X must be a 2-D .*shape \(3,\)"),
     ([[1], [1, 2]], "X must be a 2-D"), (np.ones((1, 2), complex), "X must hold integer counts"),
     (np.full((2, 2), 2**52), r"X: the counts sum to more than 2\*\*53")],
)  # fmt: skip
def test_count_matrix_refuses_what_is_not_a_count_matrix(value, message):
    with pytest.raises(DataError, match=message):
        checks.count_matrix(value, "X")


def test_output_file_refuses_a_directory_and_a_non_path(tmp_path):
    assert checks.output_file(tmp_path / "m.pt", "path", "model.pt") == tmp_path / "m.pt"
    with pytest.raises(ConfigError, match="is a directory; give a file name such as model.pt"):
        checks.output_file(tmp_path, "path", "model.pt")
    with pytest.raises(ConfigError, match="path must be a file path"):
        checks.output_file(None, "path", "model.pt")


def test_list_of_takes_any_iterable_but_a_string():
    assert checks.list_of(("a", "b"), "vocab", "words") == ["a", "b"]
    assert checks.list_of(iter(["a"]), "vocab", "words") == ["a"]
    for value in ("ab", b"ab", None, 3):
        with pytest.raises(DataError, match="vocab must be a list of words, got"):
            checks.list_of(value, "vocab", "words", DataError)


def test_integers_is_a_tuple_of_ints_each_at_least_minimum():
    assert checks.integers([np.int64(3), 5], "topics", 1) == (3, 5)
    assert checks.integers((), "sweep_topics", 1, allow_empty=True) == ()
    cases = [
        ((), "non-empty"),
        ((3, 0), "got 0"),
        ((3, 2.0), r"got 2.0 \(float\)"),
        ("3", "list of"),
    ]
    for value, match in cases:
        with pytest.raises(ConfigError, match=f"topics must be .*{match}"):
            checks.integers(value, "topics", 1)
