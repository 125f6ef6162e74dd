"""``emkit extract-ivectors``: the vectors it writes (Kaldi archive and scp, .npz) are those of the
Python API, and bad outputs are refused by name, before anything is computed."""

import numpy as np
import pytest
from cli_support import no_leftovers, one_line_error, run

from emkit.experiment import compute_stats, load_machine, ubm_of
from emkit.features import read_features
from emkit.io.kaldi_vectors import read_kaldi_vectors


@pytest.fixture(scope="module")
def system(data):
    """An i-vector system with LDA, WCCN and PLDA, trained on the module's data."""
    run("train-ivector", data / "train.scp", "--ubm", data / "ubm.h5", "--labels", data / "utt2spk",
        "--dim", 5, "--lda-dim", 3, "--iterations", 2, "-o", data / "iv.h5", "--no-progress")
    return data / "iv.h5"


def _api_vectors(data, system, space):
    """What the Python API gives: {utterance id: vector} of train.scp."""
    machine = load_machine(system)
    features = read_features(data / "train.scp")
    ivectors = machine.ivector.transform(compute_stats(ubm_of(machine), list(features.values())))
    if space == "plda":
        ivectors = machine.plda_space(ivectors, from_ivectors=True)
    elif space == "cosine":
        ivectors = machine.cosine_space(ivectors, from_ivectors=True)
    return dict(zip(features, ivectors))


@pytest.mark.parametrize("space, dim", [("raw", 5), ("plda", 3), ("cosine", 3)])
def test_the_kaldi_archive_and_the_npz_hold_the_python_apis_vectors(data, system, space, dim):
    expected = _api_vectors(data, system, space)
    ark, scp, npz = (data / f"iv_{space}.{ext}" for ext in ("ark", "scp", "npz"))
    out = run("extract-ivectors", data / "train.scp", "-m", system, "--space", space,
              "-o", f"ark,scp:{ark},{scp}", "--no-progress")
    assert f"120 i-vectors ({space}, dimension {dim}) -> {ark} and {scp}" in out.stdout
    for read in (read_kaldi_vectors(ark), read_kaldi_vectors(scp)):
        assert list(read) == list(expected)  # in the order of the features
        for key, vector in expected.items():  # FV: float32, as Kaldi's ivector-extract
            np.testing.assert_array_equal(read[key], vector.astype(np.float32))
    assert ark.read_bytes().count(b"\0BFV ") == 120
    run("extract-ivectors", data / "train.scp", "-m", system, "--space", space, "-o", npz)
    with np.load(npz) as saved:
        assert saved.files == list(expected)
        for key, vector in expected.items():  # float64, exactly
            np.testing.assert_array_equal(saved[key], vector)
            assert saved[key].dtype == np.float64


def test_ark_alone_and_a_bare_ark_path(data, system):
    run("extract-ivectors", data / "train.scp", "-m", system, "-o", f"ark:{data / 'only.ark'}")
    assert (data / "only.ark").exists() and not (data / "only.scp").exists()
    run("extract-ivectors", data / "train.scp", "-m", system, "-o", data / "bare.ark")
    assert (data / "bare.ark").read_bytes() == (data / "only.ark").read_bytes()
    assert len(read_kaldi_vectors(data / "bare.scp")) == 120


@pytest.mark.parametrize("output, fragments", [
    ("ark,t:{d}/t.ark", ["--output", "text archives are not written"]),
    ("scp:{d}/t.scp", ["--output", "no 'ark' in its options"]),
    ("ark:| gzip -c > {d}/t.gz", ["--output", "piped commands"]),
    ("ark,scp:{d}/t.ark", ["--output", "expected two paths"]),
    ("{d}/t.txt", ["--output", "t.txt", "expected 'ark:PATH.ark'", "'PATH.npz'"]),
    ("ark,scp:{d}/t.ark,{d}/train.scp", ["-o/--output (script file)", "is the input FEATURES"]),
    ("ark:{d}/train.ark", ["--output", "is the input FEATURES (in", "train.scp"]),
    ("{d}/utt2spk.npz", None),  # (no such input: written)
])
def test_a_bad_output_is_refused_by_name_and_nothing_is_written(data, system, output, fragments):
    result = run("extract-ivectors", data / "train.scp", "-m", system,
                 "-o", output.format(d=data), ok=fragments is None)
    if fragments is not None:
        one_line_error(result, 2, *fragments)
        no_leftovers(data, "t.ark", "t.scp", "t.txt")
        assert read_features(data / "train.scp")  # (the inputs still read)


def test_a_machine_that_is_no_ivector_system_is_a_usage_error(data):
    result = run("extract-ivectors", data / "train.scp", "-m", data / "ubm.h5",
                 "-o", data / "u.npz", ok=False)
    one_line_error(result, 2, "ubm.h5", "holds a UBM, not an i-vector system")
    no_leftovers(data, "u.npz")


def test_a_full_disk_is_one_line_naming_the_archive_and_the_old_files_are_kept(data, system,
                                                                                monkeypatch):
    import errno

    from writer_cases import fail_writes

    for name in ("full.ark", "full.scp"):
        (data / name).write_text("previous\n")
    fail_writes(monkeypatch, ["emkit.io.kaldi_vectors"],
                OSError(errno.ENOSPC, "No space left on device"))
    result = run("extract-ivectors", data / "train.scp", "-m", system,
                 "-o", f"ark,scp:{data / 'full.ark'},{data / 'full.scp'}", ok=False)
    one_line_error(result, 1, "[Errno 28] No space left on device: ", "full.")
    assert [(data / n).read_text() for n in ("full.ark", "full.scp")] == ["previous\n"] * 2
    no_leftovers(data)


@pytest.fixture(scope="module")
def systems_without_steps(data):
    """``{name: path}``: an i-vector system trained without --labels (no WCCN, no PLDA) and one
    with --labels and --no-plda (WCCN, no PLDA)."""
    common = ("--ubm", data / "ubm.h5", "--dim", 3, "--iterations", 1, "--no-progress")
    run("train-ivector", data / "train.scp", *common, "-o", data / "iv_unlabelled.h5")
    run("train-ivector", data / "train.scp", *common, "--labels", data / "utt2spk", "--no-plda",
        "-o", data / "iv_no_plda.h5")
    return {"unlabelled": data / "iv_unlabelled.h5", "no PLDA": data / "iv_no_plda.h5"}


@pytest.mark.parametrize("system, space, fragments", [
    ("unlabelled", "cosine", ["without WCCN (train-ivector with --labels)",
                              "use --space raw or --space plda"]),
    ("unlabelled", "plda", ["without PLDA (train-ivector with --labels and --plda)"]),
    ("no PLDA", "plda", ["without PLDA (train-ivector with --labels and --plda)",
                         "use --space raw"]),
])
def test_a_space_the_system_lacks_is_a_usage_error(data, systems_without_steps, system, space,
                                                   fragments):
    # before: cosine without WCCN wrote the plda-space vectors saying "cosine", and plda without
    # a PLDA wrote them silently
    machine = systems_without_steps[system]
    result = run("extract-ivectors", data / "train.scp", "-m", machine, "--space", space,
                 "-o", data / "lacking.npz", ok=False)
    one_line_error(result, 2, f"--space {space} does not apply: -m/--machine '{machine}' holds "
                   "an i-vector system", *fragments)
    no_leftovers(data, "lacking.npz")


def test_the_spaces_a_system_has_are_written(data, systems_without_steps):
    out = run("extract-ivectors", data / "train.scp", "-m", systems_without_steps["no PLDA"],
              "--space", "cosine", "-o", data / "cosine.npz")
    assert "120 i-vectors (cosine, dimension 3)" in out.stdout
    run("extract-ivectors", data / "train.scp", "-m", systems_without_steps["unlabelled"],
        "--space", "raw", "-o", data / "raw.npz")


def test_a_long_machine_path_is_shown_by_its_end(data, tmp_path):
    folder = tmp_path / ("d" * 120) / ("e" * 120)
    folder.mkdir(parents=True)
    (folder / "ubm.h5").write_bytes((data / "ubm.h5").read_bytes())
    result = run("extract-ivectors", data / "train.scp", "-m", folder / "ubm.h5",
                 "-o", data / "u.npz", ok=False)
    one_line_error(result, 2, f"-m/--machine '...{'e' * 73}/ubm.h5' holds a UBM, not an "
                   "i-vector system")
    assert "d" * 50 not in result.stderr
