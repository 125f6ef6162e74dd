"""train-* --checkpoint, --scheduler/--workers, and train-ivector --lda-dim/--plda-dim."""

import contextlib
import socket

import numpy as np
import pytest

from emkit import GMMMachine, ISVMachine
from emkit.experiment import IVectorBackend, length_norm
from emkit.lda import LDA
from cli_support import PROBES, no_leftovers, one_line_error, run

UBM = ("-n", 8, "--iterations", 10, "--seed", 1, "--no-progress")


def test_ubm_checkpoint_resumes_and_refuses_another_run(data, tmp_path):  # noqa: F811
    d = data
    ckpt = tmp_path / "ubm.ckpt.h5"
    run("train-ubm", d / "train.scp", *UBM, "--checkpoint", ckpt, "-o", tmp_path / "a.h5")
    assert ckpt.is_file() and (tmp_path / "ubm.ckpt.kmeans.h5").is_file()
    reference = GMMMachine.from_hdf5(d / "ubm.h5").means  # trained without a checkpoint
    np.testing.assert_array_equal(GMMMachine.from_hdf5(tmp_path / "a.h5").means, reference)
    again = run("-v", "train-ubm", d / "train.scp", *UBM, "--checkpoint", ckpt,
                "-o", tmp_path / "b.h5")
    assert "resuming from checkpoint" in again.stderr
    np.testing.assert_array_equal(GMMMachine.from_hdf5(tmp_path / "b.h5").means, reference)
    other = run("train-ubm", d / "train.scp", "-n", 4, "--no-progress", "--checkpoint", ckpt,
                "-o", tmp_path / "c.h5", ok=False)
    one_line_error(other, 1, "emkit train-ubm: error:", "belongs to another training run",
                   "ubm.ckpt", "the options differ (", "-n/--gaussians", "pass another --checkpoint")
    assert "n_gaussians" not in other.stderr and "k_means_trainer" not in other.stderr
    no_leftovers(tmp_path, "c.h5")
    seed = run("train-ubm", d / "train.scp", *UBM, "--seed", 2, "--checkpoint", ckpt,
               "-o", tmp_path / "c.h5", ok=False)  # the k-means start has the seed: no --kmeans-iterations
    one_line_error(seed, 1, "the options differ (--seed)")


def test_the_kmeans_part_of_a_checkpoint_is_an_output_too(data, tmp_path):  # noqa: F811
    # -o c5.kmeans.h5 with --checkpoint c5.h5 was accepted, and the next run failed on its own output
    d = data
    one_line_error(run("train-ubm", d / "train.scp", *UBM, "--checkpoint", tmp_path / "c5.h5",
                       "-o", tmp_path / "c5.kmeans.h5", ok=False), 2,
                   "is where --checkpoint keeps its k-means part")
    feats = tmp_path / "pk.kmeans.npy"  # an input where the k-means part would be written
    np.save(feats, np.random.default_rng(0).normal(size=(300, 3)))
    before = feats.read_bytes()
    one_line_error(run("train-ubm", feats, "-n", 2, "--checkpoint", tmp_path / "pk.npy",
                       "-o", tmp_path / "u.h5", ok=False), 2, "--checkpoint (its k-means part)",
                   "refusing to overwrite an input")
    assert feats.read_bytes() == before
    no_leftovers(tmp_path, "u.h5", "c5.h5")


def test_ubm_checkpoint_with_nan_state_is_an_error_naming_it(data, tmp_path):  # noqa: F811
    import h5py

    d = data
    ckpt = tmp_path / "ubm.ckpt.h5"
    args = ("train-ubm", d / "train.scp", "-n", 2, "--iterations", 2, "--no-progress",
            "--checkpoint", ckpt)
    run(*args, "-o", tmp_path / "a.h5")
    with h5py.File(ckpt, "r+") as f:  # a finished run, tampered with afterwards
        f["state/means"][0, 0] = np.nan
    before = ckpt.read_bytes()
    one_line_error(run(*args, "-o", tmp_path / "b.h5", ok=False), 1, "emkit train-ubm: error:",
                   str(ckpt), "'/state/means'", "NaN")
    assert ckpt.read_bytes() == before
    no_leftovers(tmp_path, "b.h5")


def test_isv_checkpoint(data, tmp_path):  # noqa: F811
    d = data
    train = (d / "train.scp", "--ubm", d / "ubm.h5", "--labels", d / "utt2spk", "--seed", 2,
             "--iterations", 2, "--no-progress")
    run("train-isv", *train, "--rank-u", 2, "-o", tmp_path / "plain.h5")
    run("train-isv", *train, "--rank-u", 2, "--checkpoint", tmp_path / "isv.ckpt",
        "-o", tmp_path / "ck.h5")
    np.testing.assert_array_equal(ISVMachine.from_hdf5(tmp_path / "ck.h5").U,
                                  ISVMachine.from_hdf5(tmp_path / "plain.h5").U)
    one_line_error(run("train-isv", *train, "--rank-u", 3, "--checkpoint", tmp_path / "isv.ckpt",
                       "-o", tmp_path / "x.h5", ok=False), 1, "isv.ckpt",
                   "belongs to another training run", "the options differ (--rank-u)")
    other_labels = tmp_path / "utt2spk"
    other_labels.write_text("".join(f"{line.split()[0]} x{i % 3}\n" for i, line in
                                    enumerate((d / "utt2spk").read_text().splitlines())))
    one_line_error(run("train-isv", *train[:4], other_labels, *train[5:], "--rank-u", 2, "--checkpoint",
                       tmp_path / "isv.ckpt", "-o", tmp_path / "x.h5", ok=False), 1,
                   "the labels differ (--labels)")


def test_train_option_usage_errors(data, tmp_path, monkeypatch):  # noqa: F811
    d = data
    base = ("train-ubm", d / "train.scp", *UBM, "-o", tmp_path / "x.h5")
    # (the quoting of '-v' is click's: "No such option: -v" in click 8.2.0, '-v' in 8.5.1)
    one_line_error(run(*base, "-v", ok=False), 2, "No such option", "-v",
                   "-v/--verbose and --debug go before the command")
    one_line_error(run(*base, "--workers", 2, "--scheduler", "tcp://h:8786", ok=False), 2,
                   "--scheduler and --workers are mutually exclusive")
    one_line_error(run(*base, "--workers", 0, ok=False), 2, "--workers")
    one_line_error(run(*base, "--scheduler", "not an address", ok=False), 2, "--scheduler",
                   "not a scheduler address")
    one_line_error(run(*base, "--checkpoint", tmp_path / "x.h5", ok=False), 2,
                   "--checkpoint", "is the output")
    one_line_error(run(*base, "--checkpoint", tmp_path, ok=False), 2, "--checkpoint")
    one_line_error(run(*base, "--checkpoint", d / "train.scp", ok=False), 2, "--checkpoint",
                   "refusing to overwrite an input")
    from emkit.cli import _train_options
    monkeypatch.setattr(_train_options, "CONNECT_TIMEOUT", "0.5s")
    one_line_error(run(*base, "--scheduler", "tcp://127.0.0.1:1", ok=False), 1,
                   "--scheduler tcp://127.0.0.1:1: cannot connect")
    no_leftovers(tmp_path, "x.h5")


def test_local_cluster_gives_the_local_model(data, tmp_path, monkeypatch):  # noqa: F811
    pytest.importorskip("distributed")
    from emkit.cli import _train_options
    monkeypatch.setattr(_train_options, "WORKER_PROCESSES", False)  # a quicker start
    from emkit.cli import _commands
    seen = []

    def spy(client, frames):
        seen.append(type(client).__name__)
        return _train_options.frames_for(client, frames)

    monkeypatch.setattr(_commands, "frames_for", spy)
    d = data
    short = (d / "train.scp", "-n", 4, "--iterations", 2, "--kmeans-iterations", 2, "--seed", 1,
             "--no-progress")
    run("train-ubm", *short, "-o", tmp_path / "here.h5")
    with contextlib.closing(socket.socket()) as busy:  # dask's default dashboard port held
        with contextlib.suppress(OSError):  # (by another cluster already: as good)
            busy.bind(("", 8787))
            busy.listen()
        run("train-ubm", *short, "--workers", 1, "-o", tmp_path / "w.h5")
    assert seen == ["NoneType", "Client"]
    got, ref = GMMMachine.from_hdf5(tmp_path / "w.h5"), GMMMachine.from_hdf5(tmp_path / "here.h5")
    scale = np.abs(ref.means).max()
    np.testing.assert_allclose(got.means, ref.means, rtol=0, atol=1e-10 * scale)


def test_checkpoint_of_a_cluster_run_is_resumed_on_a_cluster_only(data, tmp_path,  # noqa: F811
                                                                   monkeypatch):
    pytest.importorskip("distributed")
    from emkit.cli import _train_options
    monkeypatch.setattr(_train_options, "WORKER_PROCESSES", False)  # a quicker start
    d = data
    args = ("train-ubm", d / "train.scp", "-n", 2, "--iterations", 2, "--kmeans-iterations", 2,
            "--no-progress", "--checkpoint", tmp_path / "ubm.ckpt.h5")
    run(*args, "--workers", 1, "-o", tmp_path / "w.h5")
    one_line_error(run(*args, "-o", tmp_path / "x.h5", ok=False), 1, "ubm.ckpt",
                   "written by a cluster run (--workers or --scheduler", "resume it on a cluster")
    run(*args, "--workers", 1, "-o", tmp_path / "again.h5")  # on a cluster: resumes
    no_leftovers(tmp_path, "x.h5")


def test_ivector_dim_against_the_utterances_is_checked_before_training(data, tmp_path,  # noqa: F811
                                                                         monkeypatch):
    """120 utterances of 4 speakers: the whitening needs more than --dim, WCCN/PLDA (and LDA)
    --dim + 4; refused before the statistics and T, naming --dim and the counts."""
    import emkit.experiment

    monkeypatch.setattr(emkit.experiment, "compute_stats", None)  # never reached
    d = data
    train = ("train-ivector", d / "train.scp", "--ubm", d / "ubm.h5", "--no-progress",
             "-o", tmp_path / "iv.h5")
    one_line_error(run(*train, "--dim", 120, ok=False), 1, "--dim 120: the whitening of the "
                   "i-vectors needs more training utterances than --dim (at least 121); got 120")
    labelled = (*train, "--labels", d / "utt2spk")
    one_line_error(run(*labelled, "--dim", 117, ok=False), 1, "--dim 117: WCCN and PLDA need at "
                   "least --dim + the number of speakers = 117 + 4 = 121 training utterances; "
                   "got 120")
    one_line_error(run(*labelled, "--dim", 117, "--no-plda", ok=False), 1, "WCCN needs at least")
    one_line_error(run(*labelled, "--dim", 117, "--lda-dim", 2, ok=False), 1,
                   "LDA, WCCN and PLDA need")
    for result in (run(*train, "--dim", 120, ok=False), run(*labelled, "--dim", 117, ok=False)):
        assert "pinv" not in result.stderr
    no_leftovers(tmp_path, "iv.h5")


def test_ivector_lda_and_plda_dimensions(data, tmp_path):  # noqa: F811
    d = data
    train = (d / "train.scp", "--ubm", d / "ubm.h5", "--labels", d / "utt2spk", "--seed", 2,
             "--dim", 5, "--iterations", 2, "--no-progress")
    out = run("train-ivector", *train, "--lda-dim", 3, "--plda-dim", 2, "-o", tmp_path / "iv.h5")
    assert "whitening, LDA (3), WCCN, PLDA (rank 2)" in out.stdout
    system = IVectorBackend.from_hdf5(tmp_path / "iv.h5")
    assert system.lda.weights.shape == (5, 3) and system.plda is not None
    # --plda-dim sets the rank of F: a simplified PLDA (two-covariance has no rank to set)
    assert system.plda.model == "simplified" and system.plda.F_.shape == (3, 2)
    # the LDA is the one fitted on the length-normalised whitened i-vectors of the training set
    from emkit.experiment import compute_stats
    from emkit.features import read_feature_sources, read_id_map
    feats = read_feature_sources([str(d / "train.scp")])
    labels = read_id_map(d / "utt2spk")
    ids = list(labels)
    w = system.ivector.transform(compute_stats(system.ubm, [feats[u] for u in ids]))
    before = length_norm(system.whitening.transform(w))
    lda = LDA(3).fit(before, [labels[u] for u in ids])
    np.testing.assert_allclose(system.lda.weights, lda.weights, atol=1e-8)
    np.testing.assert_allclose(system.plda_space(w, from_ivectors=True),
                               length_norm(lda.transform(before)), atol=1e-10)
    for backend in ("plda", "cosine"):
        run("enroll", d / "train.scp", "-m", tmp_path / "iv.h5", "-e", d / "spk2utt",
            "--backend", backend, "-o", tmp_path / f"{backend}.h5")
        run("score", *(d / p for p in PROBES), "--models", tmp_path / f"{backend}.h5",
            "-t", d / "trials", "-o", tmp_path / f"{backend}.txt")
    # bad values
    bad = ("train-ivector", d / "train.scp", "--ubm", d / "ubm.h5", "--dim", 5,
           "-o", tmp_path / "bad.h5")
    one_line_error(run(*bad, "--lda-dim", 2, ok=False), 2, "--lda-dim needs --labels")
    one_line_error(run(*bad, "--labels", d / "utt2spk", "--lda-dim", 6, ok=False), 2,
                   "--lda-dim", "--dim 5")
    one_line_error(run(*bad, "--labels", d / "utt2spk", "--lda-dim", 0, ok=False), 2,
                   "--lda-dim")
    one_line_error(run(*bad, "--labels", d / "utt2spk", "--lda-dim", 3, "--plda-dim", 4,
                       ok=False), 2, "--plda-dim", "--lda-dim 3")
    one_line_error(run(*bad, "--labels", d / "utt2spk", "--plda-dim", 6, ok=False), 2,
                   "--plda-dim", "--dim 5")
    one_line_error(run(*bad, "--labels", d / "utt2spk", "--no-plda", "--plda-dim", 2,
                       ok=False), 2, "--plda-dim does not apply", "--no-plda")
    one_line_error(run(*bad, "--plda-dim", 2, ok=False), 2, "--plda-dim does not apply")
    one_line_error(run(*bad, "--labels", d / "utt2spk", "--lda-dim", 4, "--iterations", 1,
                       "--no-progress", ok=False), 1, "utt2spk", "--lda-dim 4 needs at least 5")
    no_leftovers(tmp_path, "bad.h5")


def test_cluster_frames_are_scattered_not_embedded_in_the_graph():
    distributed = pytest.importorskip("distributed")
    import warnings

    from emkit.cli._train_options import frames_for

    frames = np.random.default_rng(0).normal(size=(200_000, 60))  # 96 MB
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as local, \
            distributed.Client(local) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # dask's "Sending large graph" warning included
            X = frames_for(client, frames)
            assert X.chunks[0][0] == 65536 and float(X.sum().compute()) == pytest.approx(frames.sum())


def _help(command, option):
    from emkit.cli import cli

    return next(p.help for p in cli.commands[command].params if option in p.opts)


def test_checkpoint_help_describes_each_commands_own_checkpoint():
    helps = {c: _help(c, "--checkpoint") for c in ("train-ubm", "train-isv", "train-jfa",
                                                    "train-ivector")}
    assert "kmeans" in helps["train-ubm"]
    assert "(U)" in helps["train-isv"] and "(U, V, D" in helps["train-jfa"]
    assert "T and sigma" in helps["train-ivector"]
    for command in ("train-isv", "train-jfa", "train-ivector"):
        assert "k-means" not in helps[command] and "ubm.ckpt" not in helps[command], command


def test_features_help_gives_units_and_meanings():
    assert "frames" in _help("features", "--delta-window")
    assert "frames" in _help("features", "--min-cmn-window")
    for option in ("--vad-energy-threshold", "--vad-energy-mean-scale", "--vad-frames-context",
                   "--vad-proportion-threshold"):
        text = _help("features", option)
        assert not text.startswith("compute-vad") and len(text) > 50, (option, text)


def test_checkpoint_messages_of_train_ubm_and_jfa(data, tmp_path):  # noqa: F811
    # deleting the checkpoint as advised left its k-means part, refused on the next run
    d = data
    ckpt = tmp_path / "u.h5"
    run("train-ubm", d / "train.scp", *UBM, "--checkpoint", ckpt, "-o", tmp_path / "a.h5")
    other = run("train-ubm", d / "train.scp", *UBM, "--iterations", 3, "--checkpoint", ckpt,
                "-o", tmp_path / "b.h5", ok=False)
    one_line_error(other, 1, f"To start afresh, delete it and '{tmp_path / 'u.kmeans.h5'}' (the same run's)")
    # a fresh JFA run says nothing of resuming when its U and D phases start
    fresh = run("-v", "train-jfa", d / "train.scp", "--ubm", d / "ubm.h5", "--labels", d / "utt2spk",
                "--rank-u", 1, "--rank-v", 1, "--iterations", 1, "--checkpoint", tmp_path / "j.h5",
                "-o", tmp_path / "j.out.h5")
    assert "resuming" not in fresh.stderr, fresh.stderr


def test_a_scheduler_run_says_what_the_scheduler_has(data, tmp_path, caplog):  # noqa: F811
    distributed = pytest.importorskip("distributed")
    import logging

    from emkit.cli._train_options import _log_scheduler

    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp://", dashboard_address=":0") as cluster:
        result = run("-v", "train-ubm", data / "train.scp", "-n", 2, "--iterations", 1,
                     "--kmeans-iterations", 1, "--no-progress", "--scheduler",
                     cluster.scheduler_address, "-o", tmp_path / "ubm.h5")
        line = next(line for line in result.stderr.splitlines() if "dask scheduler" in line)
        assert line.startswith(f"emkit: dask scheduler {cluster.scheduler_address}: 1 worker(s), "
                               "2 thread(s); dashboard: http"), line
    caplog.clear()
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty, \
            distributed.Client(empty) as client, caplog.at_level(logging.INFO, logger="emkit"):
        _log_scheduler(client, empty.scheduler_address)
    ours = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "emkit"]
    assert len(ours) == 2 and ": 0 worker(s), 0 thread(s)" in ours[0][1], ours
    assert ours[1] == ("WARNING", f"the dask scheduler {empty.scheduler_address} has no worker "
                                  "yet: the training waits until one joins")
