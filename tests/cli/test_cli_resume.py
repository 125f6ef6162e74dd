"""Resuming train-* runs with --checkpoint: nothing finished is trained again, the model files
are those of an uninterrupted run, and a checkpoint of another run says what differs."""

import h5py

from cli_support import no_leftovers, one_line_error, run


def _ivector(d, *extra):
    return ("train-ivector", d / "train.scp", "--ubm", d / "ubm.h5", "--labels", d / "utt2spk",
            "--dim", 5, "--iterations", 2, "--seed", 3, "--no-progress", *extra)


def test_a_resumed_ivector_run_trains_nothing_again_and_writes_the_same_file(data, tmp_path):
    # the back-end (its PLDA EM included) was trained again on every resume, even when the
    # extractor and the back-end had both finished
    d, ckpt = data, tmp_path / "iv.ckpt.h5"
    run(*_ivector(d, "--lda-dim", 3), "-o", tmp_path / "plain.h5")
    first = run("-v", *_ivector(d, "--lda-dim", 3, "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    assert "PLDA(two-covariance): iteration" in first.stderr
    assert (tmp_path / "iv.ckpt.backend.h5").is_file()
    again = run("-v", *_ivector(d, "--lda-dim", 3, "--checkpoint", ckpt), "-o", tmp_path / "b.h5")
    assert "resuming from checkpoint" in again.stderr and "(training had finished)" in again.stderr
    assert "IVectorBackend: taken from checkpoint" in again.stderr
    assert "PLDA(" not in again.stderr  # no EM of the PLDA: nothing trained
    plain = (tmp_path / "plain.h5").read_bytes()
    assert (tmp_path / "a.h5").read_bytes() == plain
    assert (tmp_path / "b.h5").read_bytes() == plain
    # stopped after the extractor, before the back-end was saved: the back-end alone is trained
    (tmp_path / "iv.ckpt.backend.h5").unlink()
    late = run("-v", *_ivector(d, "--lda-dim", 3, "--checkpoint", ckpt), "-o", tmp_path / "c.h5")
    assert "(training had finished)" in late.stderr and "PLDA(two-covariance)" in late.stderr
    assert (tmp_path / "c.h5").read_bytes() == plain


def test_the_backend_part_of_another_run_is_refused_naming_what_differs(data, tmp_path):
    d, ckpt = data, tmp_path / "iv.ckpt.h5"
    run(*_ivector(d, "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    other = run(*_ivector(d, "--lda-dim", 2, "--checkpoint", ckpt), "-o", tmp_path / "x.h5",
                ok=False)
    one_line_error(other, 1, "iv.ckpt.backend.h5", "belongs to another training run",
                   "the options differ (--lda-dim)", "the back-end alone is trained again")
    for flag, option in (("--no-plda", "--plda/--no-plda"), ("--plda-dim", "--plda-dim")):
        args = (flag,) if flag == "--no-plda" else (flag, 2)
        one_line_error(run(*_ivector(d, *args, "--checkpoint", ckpt), "-o", tmp_path / "x.h5",
                           ok=False), 1, f"the options differ ({option})")
    # a back-end part whose extractor checkpoint is gone: refused before T is trained
    ckpt.unlink()
    gone = run(*_ivector(d, "--checkpoint", ckpt), "-o", tmp_path / "x.h5", ok=False)
    one_line_error(gone, 1, "iv.ckpt.backend.h5", "the extractor's checkpoint", "is gone")
    assert not ckpt.exists()
    no_leftovers(tmp_path, "x.h5")


def test_a_forged_backend_part_is_an_error_naming_it(data, tmp_path):
    d, ckpt = data, tmp_path / "iv.ckpt.h5"
    run(*_ivector(d, "--checkpoint", ckpt), "-o", tmp_path / "a.h5")
    part = tmp_path / "iv.ckpt.backend.h5"
    with h5py.File(part, "r+") as f:
        f["result"].move("wccn", "evil")
    one_line_error(run(*_ivector(d, "--checkpoint", ckpt), "-o", tmp_path / "x.h5", ok=False),
                   1, str(part), "group '/result' holds an object that is not one of")
    with h5py.File(part, "r+") as f:
        del f["result/evil"]
    one_line_error(run(*_ivector(d, "--checkpoint", ckpt), "-o", tmp_path / "x.h5", ok=False),
                   1, str(part), "not the one of this run (wccn)")
    no_leftovers(tmp_path, "x.h5")


def test_the_output_cannot_be_the_backend_part(data, tmp_path):
    d = data
    one_line_error(run(*_ivector(d, "--checkpoint", tmp_path / "c.h5"),
                       "-o", tmp_path / "c.backend.h5", ok=False), 2,
                   "is where --checkpoint keeps its back-end part")


def _shuffled_labels(d, tmp_path):
    """The fixture's utt2spk (sorted by utterance id) with its lines in another order."""
    lines = (d / "utt2spk").read_text().splitlines()
    assert lines == sorted(lines)
    shuffled = tmp_path / "utt2spk.shuffled"
    shuffled.write_text("\n".join(lines[1::2] + lines[::2][::-1]) + "\n")
    return shuffled


def test_the_order_of_the_label_lines_changes_neither_the_model_nor_the_checkpoint(data,
                                                                                  tmp_path):
    # the utterances were trained in the lines' order: another order gave other rounding
    # (|dU| ~ 1e-14) and a resume was refused as "the features differ; the labels differ"
    d = data
    shuffled = _shuffled_labels(d, tmp_path)
    isv = ("train-isv", d / "train.scp", "--ubm", d / "ubm.h5", "--rank-u", 2, "--iterations", 2,
           "--seed", 2, "--no-progress")
    run(*isv, "--labels", d / "utt2spk", "--checkpoint", tmp_path / "isv.ck", "-o", tmp_path / "a.h5")
    resumed = run("-v", *isv, "--labels", shuffled, "--checkpoint", tmp_path / "isv.ck",
                  "-o", tmp_path / "b.h5")
    assert "(training had finished)" in resumed.stderr
    run(*isv, "--labels", shuffled, "-o", tmp_path / "c.h5")
    sorted_isv = (tmp_path / "a.h5").read_bytes()
    assert (tmp_path / "b.h5").read_bytes() == sorted_isv
    assert (tmp_path / "c.h5").read_bytes() == sorted_isv
    ivector = ("train-ivector", d / "train.scp", "--ubm", d / "ubm.h5", "--dim", 5,
               "--iterations", 2, "--seed", 3, "--no-progress", "--labels")
    run(*ivector, d / "utt2spk", "-o", tmp_path / "iv_sorted.h5")
    run(*ivector, shuffled, "-o", tmp_path / "iv_shuffled.h5")
    assert (tmp_path / "iv_sorted.h5").read_bytes() == (tmp_path / "iv_shuffled.h5").read_bytes()


def test_sorted_labels_train_as_the_library_does_in_their_order(data, tmp_path):
    # sorting the utterances changes nothing for a list already sorted (Kaldi's lists are)
    import numpy as np

    from emkit import ISVMachine
    from emkit.experiment import compute_stats
    from emkit.features import read_feature_sources, read_id_map

    d = data
    run("train-isv", d / "train.scp", "--ubm", d / "ubm.h5", "--labels", d / "utt2spk",
        "--rank-u", 2, "--iterations", 2, "--seed", 2, "--no-progress", "-o", tmp_path / "a.h5")
    ubm = ISVMachine.from_hdf5(tmp_path / "a.h5").ubm
    feats, labels = read_feature_sources([str(d / "train.scp")]), read_id_map(d / "utt2spk")
    stats = compute_stats(ubm, [feats[u] for u in labels])  # the file's order (sorted)
    direct = ISVMachine(ubm=ubm, r_U=2, em_iterations=2, relevance_factor=4.0,
                        random_state=2).fit(stats, list(labels.values()))
    np.testing.assert_array_equal(ISVMachine.from_hdf5(tmp_path / "a.h5").U, direct.U)


def _shuffled_scp(d, tmp_path):
    """The fixture's train.scp (sorted by utterance id) with its lines in another order."""
    lines = (d / "train.scp").read_text().splitlines()
    assert lines == sorted(lines)
    shuffled = tmp_path / "train.shuffled.scp"
    lines = [line.replace(" train.ark:", f" {d / 'train.ark'}:") for line in lines]
    shuffled.write_text("\n".join(lines[1::2] + lines[::2][::-1]) + "\n")
    return shuffled


def test_the_order_of_the_feature_lines_changes_neither_the_ubm_nor_its_checkpoint(data,
                                                                                   tmp_path):
    # train-ubm took the frames in the scp's order: k-means samples frames by index, so another
    # order trained another UBM, and a resume was refused as "the features differ"
    d = data
    shuffled = _shuffled_scp(d, tmp_path)
    ubm = ("train-ubm", "-n", 4, "--iterations", 3, "--kmeans-iterations", 3, "--seed", 1,
           "--no-progress")
    ckpt = tmp_path / "ubm.ck.h5"
    run(*ubm, d / "train.scp", "--checkpoint", ckpt, "-o", tmp_path / "a.h5")
    resumed = run("-v", *ubm, shuffled, "--checkpoint", ckpt, "-o", tmp_path / "b.h5")
    assert "(training had finished)" in resumed.stderr
    run(*ubm, shuffled, "-o", tmp_path / "c.h5")
    sorted_ubm = (tmp_path / "a.h5").read_bytes()
    assert (tmp_path / "b.h5").read_bytes() == sorted_ubm
    assert (tmp_path / "c.h5").read_bytes() == sorted_ubm
    # train-ivector without --labels: the utterances in id order too
    ivector = ("train-ivector", "--ubm", d / "ubm.h5", "--dim", 5, "--iterations", 2, "--seed", 3,
               "--no-progress")
    run(*ivector, d / "train.scp", "-o", tmp_path / "iv_sorted.h5")
    run(*ivector, shuffled, "-o", tmp_path / "iv_shuffled.h5")
    assert (tmp_path / "iv_sorted.h5").read_bytes() == (tmp_path / "iv_shuffled.h5").read_bytes()


def test_a_sorted_scp_trains_the_ubm_as_the_library_does_in_its_order(data, tmp_path):
    # taking the utterances in id order changes nothing for an scp already sorted (Kaldi's are)
    import numpy as np

    from emkit import GMMMachine
    from emkit.experiment import train_ubm
    from emkit.features import read_feature_sources

    d = data
    run("train-ubm", d / "train.scp", "-n", 4, "--iterations", 3, "--seed", 1, "--no-progress",
        "-o", tmp_path / "a.h5")
    feats = read_feature_sources([str(d / "train.scp")])  # the file's order (sorted)
    direct = train_ubm(np.concatenate(list(feats.values())), 4, max_iterations=3, seed=1)
    cli_ubm = GMMMachine.from_hdf5(tmp_path / "a.h5")
    for name in ("means", "variances", "weights"):
        np.testing.assert_array_equal(getattr(cli_ubm, name), getattr(direct, name))
