"""emkit.audio: MFCC/fbank through kaldi-native-fbank, the pipeline, inputs and outputs.

Audio is generated here (tones, chirps, noise written with soundfile), never downloaded.
"""

import os

import numpy as np
import pytest

knf = pytest.importorskip("kaldi_native_fbank", reason="the audio extra (emkit[audio]) is not "
                          "installed")
sf = pytest.importorskip("soundfile", reason="the audio extra (emkit[audio]) is not installed")

from emkit.audio import (AudioError, FeatureConfig, KaldiOptions, add_deltas,  # noqa: E402
                         compute_features, compute_kaldi_features, compute_vad, extract_features,
                         extract_many, find_utterances, log_energy, read_audio, sliding_cmvn)
from emkit.audio._kaldi_features import check_options  # noqa: E402
from emkit.features import read_features  # noqa: E402
from audio_files import RATE, speech_like, write  # noqa: E402

def knf_reference(samples, opts):
    """kaldi-native-fbank's own output, set up directly (not through emkit)."""
    o = knf.MfccOptions() if opts["kind"] == "mfcc" else knf.FbankOptions()
    o.frame_opts.dither = 0.0
    o.frame_opts.samp_freq = opts.get("rate", 16000.0)
    o.frame_opts.snip_edges = opts.get("snip_edges", True)
    o.frame_opts.frame_shift_ms = opts.get("shift", 10.0)
    o.mel_opts.num_bins = opts.get("bins", 23)
    o.mel_opts.low_freq = opts.get("low", 20.0)
    o.mel_opts.high_freq = opts.get("high", 0.0)
    if opts["kind"] == "mfcc":
        o.num_ceps = opts.get("ceps", 13)
    o.use_energy = opts.get("energy", opts["kind"] == "mfcc")
    m = knf.OnlineMfcc(o) if opts["kind"] == "mfcc" else knf.OnlineFbank(o)
    m.accept_waveform(o.frame_opts.samp_freq, samples.astype(np.float32))
    m.input_finished()
    return np.array([m.get_frame(i) for i in range(m.num_frames_ready)])


CASES = [dict(kind="mfcc"), dict(kind="fbank"),
         dict(kind="mfcc", ceps=20, bins=40, high=-400.0, snip_edges=False, energy=False),
         dict(kind="fbank", bins=40, low=60.0, high=3800.0, energy=True, shift=12.5)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_features_equal_kaldi_native_fbank(case):
    samples = speech_like(seed=1) * 32768
    opts = KaldiOptions(kind=case["kind"], num_ceps=case.get("ceps", 13),
                        num_mel_bins=case.get("bins", 23), low_freq=case.get("low", 20.0),
                        high_freq=case.get("high", 0.0), snip_edges=case.get("snip_edges", True),
                        frame_shift=case.get("shift", 10.0), use_energy=case.get("energy"))
    ours = compute_kaldi_features(samples, opts)
    theirs = knf_reference(samples, case)
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    assert np.array_equal(ours, theirs)


def test_pipeline_without_steps_is_kaldis_mfcc_of_the_file(tmp_path):
    x = speech_like(seed=2)
    path = write(tmp_path / "a.wav", x)
    config = FeatureConfig(vad=False, delta_order=0, cmvn="none")
    int16 = sf.read(path, dtype="int16")[0].astype(np.float64)  # Kaldi's view of the wav
    assert np.array_equal(extract_features(path, config), knf_reference(int16, dict(kind="mfcc")))


def test_pipeline_order_vad_deltas_cmvn(tmp_path):
    x = speech_like(seed=3)
    path = write(tmp_path / "a.wav", x)
    samples = read_audio(path)
    raw = compute_kaldi_features(samples).astype(np.float64)
    voiced = compute_vad(raw[:, 0])
    assert 0 < voiced.sum() < len(voiced)
    expected = sliding_cmvn(add_deltas(raw), center=True, cmn_window=300)[voiced]
    got = extract_features(path, FeatureConfig(center=True, cmn_window=300))
    assert got.shape == (voiced.sum(), 39)
    assert np.max(np.abs(got - expected)) <= 1e-5 * np.max(np.abs(expected))


def test_fbank_vad_uses_the_log_energy(tmp_path):
    path = write(tmp_path / "a.wav", speech_like(seed=4))
    samples = read_audio(path)
    voiced = compute_vad(log_energy(samples))
    got = extract_features(path, FeatureConfig(kaldi=KaldiOptions(kind="fbank"), delta_order=0,
                                               cmvn="none"))
    assert np.array_equal(got, compute_kaldi_features(samples, KaldiOptions(kind="fbank"))[voiced])


def test_ark_scp_read_back_by_emkit(tmp_path):
    src, out = _mkdir(tmp_path / "in"), _mkdir(tmp_path / "out")
    for i in range(3):
        write(src / f"spk{i}_utt.wav", speech_like(seed=10 + i, f0=100 + 50 * i))
    shapes = compute_features([src], out / "feats.ark", jobs=2)
    assert list(shapes) == ["spk0_utt", "spk1_utt", "spk2_utt"]
    from_ark = read_features(tmp_path / "out" / "feats.ark")
    from_scp = read_features(tmp_path / "out" / "feats.scp")
    assert list(from_ark) == list(from_scp) == list(shapes)
    for key, matrix in from_scp.items():
        direct = extract_features(tmp_path / "in" / f"{key}.wav")
        assert matrix.shape == shapes[key] == direct.shape
        assert np.array_equal(matrix, direct.astype(np.float64))
        assert np.array_equal(from_ark[key], matrix)
    assert not [n for n in os.listdir(tmp_path / "out") if n.startswith(".emkit-")]


def test_an_archive_in_a_folder_with_spaces_is_named_by_its_scp(tmp_path):
    # before: any white space in the archive's absolute path was refused, so 'emkit features -o
    # "My Project/feats.ark"' and every 'emkit run' of a recipe (with audio) kept in such a folder
    # failed; an scp line's file name is the rest of the line, in Kaldi and in emkit's reader
    src, out = _mkdir(tmp_path / "in"), _mkdir(tmp_path / "My Project")
    write(src / "spk0_utt.wav", speech_like(seed=10))
    write(src / "spk1_utt.wav", speech_like(seed=11, f0=200))
    compute_features([src], out / "feats.ark")
    lines = (out / "feats.scp").read_text().splitlines()
    assert lines[0] == f"spk0_utt {out / 'feats.ark'}:9"
    from_scp, from_ark = read_features(out / "feats.scp"), read_features(out / "feats.ark")
    assert list(from_scp) == ["spk0_utt", "spk1_utt"]
    for key, matrix in from_scp.items():
        assert np.array_equal(matrix, from_ark[key])
    # a line break is what an scp line cannot hold: refused, nothing written
    broken = _mkdir(tmp_path / "line\nbreak")
    with pytest.raises(ValueError, match="must not contain a line break"):
        compute_features([src], broken / "feats.ark")
    assert os.listdir(broken) == []


def _mkdir(path):
    path.mkdir(exist_ok=True)
    return path


def test_npy_directory_and_worker_processes_give_the_same_features(tmp_path):
    src = _mkdir(tmp_path / "in")
    for i in range(5):
        write(src / f"u{i}.flac" if i % 2 else src / f"u{i}.wav", speech_like(seed=i))
    one = compute_features([src], tmp_path / "one", jobs=1)
    four = compute_features([src], tmp_path / "four", jobs=4, progress=True)
    assert list(one) == list(four) == [f"u{i}" for i in range(5)]
    for key in one:
        a = np.load(tmp_path / "one" / f"{key}.npy")
        assert a.dtype == np.float32
        assert np.array_equal(a, np.load(tmp_path / "four" / f"{key}.npy"))
        assert np.array_equal(read_features(tmp_path / "one" / f"{key}.npy")[key], a)


def test_kaldi_data_directory_with_segments(tmp_path):
    data = _mkdir(tmp_path / "data")
    audio = _mkdir(tmp_path / "audio")
    long = np.concatenate([speech_like(seed=20), speech_like(seed=21)])
    write(audio / "rec1.wav", long)
    write(audio / "rec2.wav", speech_like(seed=22))
    (data / "wav.scp").write_text(f"r1 {audio / 'rec1.wav'}\nr2 ../audio/rec2.wav\n")
    (data / "segments").write_text("s1-a r1 0.0 1.0\ns1-b r1 1.0 -1\ns2-a r2 0 1.2\n")
    (data / "utt2spk").write_text("s1-a s1\ns1-b s1\ns2-a s2\n")
    utts = find_utterances([data])
    assert [(u.id, u.start, u.end, u.speaker) for u in utts] == \
        [("s1-a", 0.0, 1.0, "s1"), ("s1-b", 1.0, None, "s1"), ("s2-a", 0.0, 1.2, "s2")]
    shapes = compute_features([data], tmp_path / "f.ark")
    feats = read_features(tmp_path / "f.scp")
    assert list(feats) == ["s1-a", "s1-b", "s2-a"]
    # a segment is the features of the cut audio (here: the first second of rec1)
    write(audio / "first.wav", long[:RATE])
    assert np.array_equal(feats["s1-a"], extract_features(audio / "first.wav").astype(float))
    assert shapes["s2-a"] == feats["s2-a"].shape


def test_data_directory_without_segments_uses_recording_ids(tmp_path):
    data = _mkdir(tmp_path / "data")
    write(data / "x.wav", speech_like(seed=30))
    (data / "wav.scp").write_text("utt-1 x.wav\n")
    assert [u.id for u in find_utterances(data)] == ["utt-1"]


def test_relative_wav_scp_paths_are_taken_from_the_current_directory_first(tmp_path, monkeypatch):
    """As Kaldi (and emkit's feature scp files) do: the data directory's file of the same
    relative name was taken first, silently giving other audio."""
    data = tmp_path / "data" / "d"
    (data / "wav").mkdir(parents=True)
    _mkdir(tmp_path / "wav")
    write(tmp_path / "wav" / "a.wav", speech_like(seed=31))
    write(data / "wav" / "a.wav", speech_like(seed=32))
    write(data / "wav" / "b.wav", speech_like(seed=33))
    (data / "wav.scp").write_text("a wav/a.wav\nb wav/b.wav\n")
    monkeypatch.chdir(tmp_path)  # the recipe root: wav/a.wav is there, wav/b.wav is not
    paths = {u.id: u.path for u in find_utterances(data)}
    assert os.path.samefile(paths["a"], tmp_path / "wav" / "a.wav")
    assert os.path.samefile(paths["b"], data / "wav" / "b.wav")


def test_a_missing_relative_wav_scp_path_says_where_it_was_looked_for(tmp_path, monkeypatch):
    # before: "no such audio file 'wav/b.wav'" alone, while a wav.scp written relative to the
    # folder it was made from works from there and not from another (a recipe run from
    # elsewhere): the user could not tell from where the path was taken
    data = _mkdir(tmp_path / "data")
    (data / "wav.scp").write_text(f"b wav/b.wav\nc {tmp_path / 'c.wav'}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        find_utterances(data)
    assert str(info.value) == (
        f"'{data}/wav.scp' line 1: no such audio file 'wav/b.wav' (a relative path is looked "
        f"for from the current directory, '{tmp_path}', then from the data directory, "
        f"'{data}')")
    (data / "wav.scp").write_text(f"c {tmp_path / 'c.wav'}\n")  # an absolute one: the path
    with pytest.raises(FileNotFoundError) as info:
        find_utterances(data)
    assert str(info.value).endswith(f"line 1: no such audio file '{tmp_path}/c.wav'")


@pytest.mark.parametrize("line", ["u1 sox x.wav -t wav - |", "u1 | rm -rf x", "u1 -"])
def test_piped_wav_scp_is_refused_never_run(tmp_path, line):
    data = _mkdir(tmp_path / "data")
    (data / "wav.scp").write_text(line + "\n")
    with pytest.raises(AudioError, match=r"wav.scp. line 1: .*piped command"):
        compute_features([data], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("files,match", [
    ({"wav.scp": "u1 a.wav\nu1 a.wav\n"}, "listed twice"),
    ({"wav.scp": "u1 nothere.wav\n"}, "no such audio file"),
    ({"wav.scp": "u1 a.wav\n", "utt2spk": "u2 s\n"}, "has no speaker"),
    ({"wav.scp": "u1 a.wav\n", "segments": "s r9 0 1\n"}, "not in wav.scp"),
    ({"wav.scp": "u1 a.wav\n", "segments": "s u1 1 0.5\n"}, "start < end"),
    # (before: no word of the 0.5 s allowed nor of what to do)
    ({"wav.scp": "u1 a.wav\n", "segments": "s u1 0 9\n"},
     r"ends 8.000s after the recording \(1.000s long\), more than the 0.5 s allowed \(as "
     r"Kaldi's extract-segments --max-overshoot\); correct its end, or give -1 for the end of "
     r"the recording$"),
    ({"wav.scp": "u1 a.wav\n", "segments": "s u1 x 1\n"}, "must be finite numbers of seconds"),
    ({"wav.scp": "u1 a.wav\n", "segments": "s u1 0 " + "1" * 70_000 + "\n"},
     "segments. line 1: longer than 65536 bytes"),  # refused before it is read whole
])
def test_bad_data_directory(tmp_path, files, match):
    data = _mkdir(tmp_path / "data")
    write(data / "a.wav", speech_like(seed=5))
    for name, text in files.items():
        (data / name).write_text(text)
    with pytest.raises((AudioError, FileNotFoundError), match=match):
        compute_features([data], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_same_utterance_id_twice_is_an_error(tmp_path):
    a, b = _mkdir(tmp_path / "a"), _mkdir(tmp_path / "b")
    write(a / "x.wav", speech_like())
    write(b / "x.flac", speech_like())
    with pytest.raises(AudioError, match="'x' comes from both .*; a file's utterance is named "
                                         "after the file's stem: rename the files, or list them "
                                         "in a Kaldi data directory"):
        find_utterances([a, b])


def test_bad_options():
    with pytest.raises(ValueError, match="num_ceps"):
        KaldiOptions(num_ceps=30, num_mel_bins=23)
    with pytest.raises(ValueError, match="high_freq"):
        KaldiOptions(high_freq=9000)
    with pytest.raises(ValueError, match="window_type"):
        KaldiOptions(window_type="bogus")
    with pytest.raises(ValueError, match="num_mel_bins too large"):
        check_options(KaldiOptions(num_mel_bins=300))
    with pytest.raises(ValueError, match="cmvn"):
        FeatureConfig(cmvn="global")
    with pytest.raises(ValueError, match="channel must be -1 or None .*; got -2"):
        FeatureConfig(channel=-2)
    with pytest.raises(ValueError, match="proportion_threshold"):
        FeatureConfig(vad_proportion_threshold=1.5)
    with pytest.raises(ValueError, match="jobs"):
        list(extract_many([], jobs=0))


@pytest.mark.parametrize("options,match", [
    (dict(frame_shift=0.01), r"frame_shift must be at least one sample .*got 0.01 ms, which is 0 "
                             "samples"),
    (dict(frame_length=0.05), r"frame_length must be at least one sample .*got 0.05 ms"),
    (dict(frame_shift=0.1, sample_frequency=8000.0), r"frame_shift .*\(0.125 ms at "
                                                     r"sample_frequency 8000 Hz\)"),
    (dict(frame_length=16000), r"frame_length must be at most 1000 ms.*got 16000 ms, which is "
                               "256000 samples"),
    (dict(frame_shift=float("nan")), "must be positive finite numbers"),
    # before: accepted, and the options check allocated 373 GiB (a MemoryError)
    (dict(sample_frequency=1e12), r"a frame of frame_length 25 ms at sample_frequency 1e\+12 Hz "
                                  "is 25000000000 samples; at most 131072"),
    (dict(sample_frequency=192000.0, frame_length=1000), "is 192000 samples; at most 131072"),
])
def test_frames_of_less_than_one_sample_or_over_a_second_are_refused(options, match):
    # a shift under one sample killed the process (SIGFPE in kaldi-native-fbank): refused first
    with pytest.raises(ValueError, match=match):
        KaldiOptions(**options)


@pytest.mark.parametrize("options,match", [
    # before: accepted; NaN dither stopped kaldi-native-fbank with "RuntimeError: mel energy is
    # nan", a NaN or infinite lifter gave NaN features, a NaN energy floor was no floor
    (dict(dither=float("nan")), "dither must be a finite number; got nan"),
    (dict(preemphasis_coefficient=float("nan")), "preemphasis_coefficient must be a finite"),
    (dict(preemphasis_coefficient=1.5), r"preemphasis_coefficient must be in \[0, 1\]"),
    (dict(energy_floor=float("nan")), "energy_floor must be a finite number; got nan"),
    (dict(energy_floor=-1.0), "energy_floor must be >= 0; got -1.0"),
    (dict(cepstral_lifter=float("inf")), "cepstral_lifter must be a finite number; got inf"),
    (dict(cepstral_lifter=-22.0), "cepstral_lifter must be >= 0"),
    (dict(low_freq=float("nan")), "low_freq must be a finite number"),
    # before: accepted, and an 8000 Hz file read as int(8000.5) Hz had its frames cut at 8000.5
    (dict(sample_frequency=8000.5), "sample_frequency must be a whole number of Hz, as an audio "
                                    "file's rate is; got 8000.5"),
])
def test_kaldi_options_that_are_not_finite_or_out_of_range_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        KaldiOptions(**options)


@pytest.mark.parametrize("options,match", [
    (dict(vad_energy_threshold=float("nan")), "vad_energy_threshold must be a finite number"),
    (dict(vad_energy_mean_scale=float("nan")), "vad_energy_mean_scale must be a finite number"),
    (dict(vad_energy_mean_scale=-1.0), "vad_energy_mean_scale must be a finite number >= 0"),
    (dict(vad_frames_context=-1), "vad_frames_context must be"),
])
def test_vad_options_are_named_as_the_feature_configs_fields(options, match):
    # before: a NaN threshold was accepted (every utterance "all silence"), and the messages
    # named compute_vad's arguments (energy_threshold), not the fields or recipe keys
    with pytest.raises(ValueError, match=f"^{match}"):
        FeatureConfig(**options)


def test_frames_of_one_sample_and_of_one_second_are_accepted():
    x = np.random.default_rng(0).standard_normal(3000) * 1000
    assert compute_kaldi_features(x, KaldiOptions(frame_shift=0.0625)).shape[0] == 2601
    check_options(KaldiOptions(frame_length=1000, snip_edges=False))


def test_white_space_in_an_utterance_id_is_refused_up_front(tmp_path):
    long_dir = _mkdir(tmp_path / ("d" * 150))
    write(long_dir / "a.wav", speech_like())
    (long_dir / "zz my take.wav").write_text("not audio: never read")
    with pytest.raises(AudioError, match="white space, which Kaldi ids cannot contain") as info:
        find_utterances([long_dir])
    message = str(info.value)
    assert "audio file '" in message and "'zz my take'" in message and len(message) < 250


def test_processes_for_counts_the_audio(tmp_path, monkeypatch):
    from emkit.audio import SECONDS_PER_PROCESS, Utterance, _pipeline, processes_for

    monkeypatch.setattr(_pipeline, "usable_cpus", lambda: 64)  # (the CPU bound: test below)

    for i in range(3):
        write(tmp_path / f"u{i}.wav", speech_like(seconds=1.0, seed=i))
    files = find_utterances([tmp_path])  # 3 s of audio from the headers
    assert processes_for(files, 2, SECONDS_PER_PROCESS) == 1
    assert processes_for(files, 2, None) == 2 and processes_for(files, 8, None) == 3
    assert [processes_for(files, 8, s) for s in (0.5, 1.0, 1.5, 2.0, 4.0)] == [3, 3, 2, 1, 1]
    # a segment counts its times (the file is not opened); to the end of the file, its header
    segments = [Utterance(f"s{k}", str(tmp_path / "missing.wav"), 0.0, 300.0) for k in range(3)]
    assert processes_for(segments, 8, 450) == 2
    assert processes_for([Utterance("a", str(tmp_path / "u0.wav"), 0.25)] * 2, 2, 0.375) == 2
    assert processes_for([Utterance("a", str(tmp_path / "u0.wav"), 0.75)] * 2, 2, 0.375) == 1
    with pytest.raises(ValueError, match="seconds_per_process must be a positive finite"):
        processes_for(files, 2, float("nan"))


def test_jobs_are_cut_to_the_cpus_this_process_may_use(monkeypatch, caplog):
    # before: processes_for kept jobs = 100000 for 100000 utterances (only the number of
    # utterances and of minutes of audio cut it), so recipe jobs or emkit features -j that
    # large started that many loky processes on a machine of a few CPUs
    import logging

    from emkit.audio import _pipeline
    from emkit.audio._sources import Utterance

    monkeypatch.setattr(_pipeline, "usable_cpus", lambda: 3, raising=False)
    utterances = [Utterance(f"u{i}", f"/nonexistent/u{i}.wav") for i in range(10)]
    with caplog.at_level(logging.WARNING, logger="emkit"):
        assert _pipeline.processes_for(utterances, 100_000, None) == 3
    assert ("features: jobs=100000 is more processes than the 3 CPUs this process may use: "
            "using 3") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="emkit"):  # more jobs than utterances, as before
        assert _pipeline.processes_for(utterances[:2], 100_000, None) == 2
        assert _pipeline.processes_for(utterances, 3, None) == 3
    assert not caplog.records


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs an affinity mask of two CPUs or more to narrow")
def test_the_default_jobs_fit_the_cpus_this_process_may_use():
    # before: emkit features' default -j was min(8, os.cpu_count()), every CPU of the machine,
    # so under taskset/cgroups/Slurm each run warned "jobs=2 is more processes than the 1 CPU
    # this process may use", naming an option the user never gave
    import subprocess
    import sys

    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from emkit.cli._features import DEFAULT_JOBS; print(DEFAULT_JOBS)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.stdout.strip() == "1"


def test_a_long_path_of_a_wav_scp_is_shown_by_its_tail_only(tmp_path):
    # before: its last 120 characters, more than the 100 of the file that untrusted files'
    # messages may echo (the scp reader and message_subject show 80)
    data = _mkdir(tmp_path / "data")
    target = "/nonexistent/" + "d" * 200 + "/b.wav"
    (data / "wav.scp").write_text(f"b {target}\n")
    with pytest.raises(FileNotFoundError) as info:
        find_utterances(data)
    assert str(info.value).endswith(f"no such audio file '...{target[-80:]}'")
    assert "d" * 100 not in str(info.value)
