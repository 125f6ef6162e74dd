"""``emkit features``: Kaldi-compatible MFCC/filterbank features from audio (the audio extra)."""

from __future__ import annotations

import os
import re

import click

from .._cpus import usable_cpus
from ._app import check_outputs, progress_option
from ._commands import _explicit
from ._kaldi_args import (Channel, KaldiStyleCommand, SampleFrequency, Verbose,
                          check_fixed_given, kaldi_generic_options, merge_sample_frequency)
from ._numbers import NON_NEGATIVE, POSITIVE, FiniteFloat, FiniteFloatRange, IntRange
from .._progress import plural, utterances_written

DEFAULT_JOBS = min(8, usable_cpus())  # (processes_for warns when jobs exceeds them)
# emkit.audio's WINDOWS and emkit.io.untrusted's MAX_UTTERANCE_BYTES (a test checks they are):
# those modules import numpy, which emkit --help must not
WINDOWS = ("povey", "hamming", "hanning", "rectangular", "blackman")
MAX_UTTERANCE_BYTES = 2 * 1024**3


def _options(f):
    opts = [
        click.option("--type", "kind", type=click.Choice(["mfcc", "fbank"]), default="mfcc",
                     show_default=True, help="MFCC (Kaldi's compute-mfcc-feats) or log mel "
                     "filterbank energies (compute-fbank-feats)."),
        click.option("--sample-rate", type=IntRange(min=1), default=16000,
                     show_default=True, help="The sample rate of the audio, in Hz; a file at "
                     "another rate is an error (resample it first, e.g. with sox)."),
        click.option("--sample-frequency", type=SampleFrequency(), default=None,
                     help="Kaldi's name of --sample-rate (8000 or 8000.0)."),
        click.option("--channel", type=Channel(), default=None,
                     help="The channel of multi-channel files, from 0 (0: the first, left) "
                          "[default, or -1 as in Kaldi: mono expected; the first channel of "
                          "multi-channel files, with a warning, as Kaldi].  A segments "
                          "line's fifth field is the channel of that segment (as in Kaldi's "
                          "extract-segments), whatever this option says."),
        click.option("--num-ceps", type=IntRange(min=1), default=13, show_default=True,
                     help="MFCC: number of cepstra (C0 replaced by the log energy)."),
        click.option("--num-mel-bins", type=IntRange(min=3), default=23, show_default=True,
                     help="Number of mel filters."),
        click.option("--frame-length", type=POSITIVE, default=25.0, show_default=True,
                     help="Frame length in ms (one sample to 1000 ms)."),
        click.option("--frame-shift", type=POSITIVE, default=10.0, show_default=True,
                     help="Frame shift in ms (one sample at least)."),
        click.option("--low-freq", type=NON_NEGATIVE, default=20.0, show_default=True,
                     help="Low cut-off of the mel filters, Hz."),
        click.option("--high-freq", type=FiniteFloat(), default=0.0, show_default=True,
                     help="High cut-off of the mel filters, Hz (<= 0: offset from Nyquist)."),
        click.option("--dither", type=NON_NEGATIVE, default=0.0, show_default=True,
                     help="Dither: dither x N(0, 1) added to each sample of each frame "
                          "(16-bit scale; Kaldi's default is 1; 0: none).  The noise is seeded "
                          "by the utterance's id and --dither-seed: the same every run, "
                          "whatever -j."),
        click.option("--dither-seed", type=IntRange(min=0, max=2**64 - 1), default=0,
                     show_default=True,
                     help="Seed of the dither noise, mixed with each utterance's id: the same "
                          "seed, the same features every run; another seed, other noise "
                          "(0 to 2**64 - 1; emkit's own option, not Kaldi's)."),
        click.option("--snip-edges/--no-snip-edges", default=True, show_default=True,
                     help="Kaldi's --snip-edges: only frames that fit in the audio."),
        click.option("--preemphasis-coefficient", type=FiniteFloatRange(0, 1), default=0.97,
                     show_default=True, help="Pre-emphasis x[t] - c * x[t-1] of each frame "
                     "(0: none)."),
        click.option("--remove-dc-offset/--no-remove-dc-offset", default=True, show_default=True,
                     help="Subtract each frame's mean before the window."),
        click.option("--window-type", type=click.Choice(list(WINDOWS)), default="povey",
                     show_default=True, help="Window function of each frame."),
        click.option("--round-to-power-of-two/--no-round-to-power-of-two", default=True,
                     show_default=True, help="Pad each frame to a power of two for the FFT."),
        click.option("--raw-energy/--no-raw-energy", default=True, show_default=True,
                     help="The log energy of the frame before pre-emphasis and window."),
        click.option("--energy-floor", type=NON_NEGATIVE, default=0.0,
                     show_default=True, help="Floor on the frame energy (0: none; Kaldi "
                     "suggests 0.1 or 1 with --dither 0)."),
        click.option("--cepstral-lifter", type=NON_NEGATIVE, default=22.0,
                     show_default=True, help="MFCC: liftering coefficient (0: none)."),
        click.option("--use-energy/--no-use-energy", default=None,
                     help="Log energy as the first feature [default: on for mfcc, off for "
                          "fbank]."),
        click.option("--delta-order", type=IntRange(min=0), default=2, show_default=True,
                     help="Add deltas up to this order (add-deltas); 0: none."),
        click.option("--delta-window", type=IntRange(min=1), default=2, show_default=True,
                     help="Half-width of the delta regression window, in frames (each order's "
                          "window spans 2 x this + 1 frames)."),
        click.option("--vad/--no-vad", default=True, show_default=True,
                     help="Keep only the voiced frames (energy VAD, Kaldi's compute-vad)."),
        click.option("--vad-energy-threshold", type=FiniteFloat(), default=5.0, show_default=True,
                     help="A frame is loud when its log energy exceeds this + "
                          "--vad-energy-mean-scale x the utterance's mean log energy "
                          "(compute-vad's option; 16-bit-scale audio)."),
        click.option("--vad-energy-mean-scale", type=NON_NEGATIVE, default=0.5,
                     show_default=True, help="Weight of the utterance's mean log energy in "
                     "the loudness threshold (see --vad-energy-threshold; 0: a fixed threshold)."),
        click.option("--vad-frames-context", type=IntRange(min=0), default=0,
                     show_default=True, help="Frames on each side of a frame that its "
                     "decision looks at (0: the frame alone)."),
        click.option("--vad-proportion-threshold",
                     type=FiniteFloatRange(min=0, max=1, min_open=True, max_open=True),
                     default=0.6, show_default=True,
                     help="Fraction of that window (the frame and --vad-frames-context frames "
                          "on each side) that must be loud for the frame to be voiced."),
        click.option("--cmvn", type=click.Choice(["none", "utterance", "sliding"]),
                     default="sliding", show_default=True,
                     help="Mean normalisation: none, per utterance, or sliding window "
                          "(apply-cmvn-sliding)."),
        click.option("--cmn-window", type=IntRange(min=1), default=600, show_default=True,
                     help="Sliding CMVN window, frames."),
        click.option("--min-cmn-window", type=IntRange(min=1), default=100,
                     show_default=True, help="Sliding CMVN, not centred: smallest window at "
                     "the start, in frames."),
        click.option("--center/--no-center", default=False, show_default=True,
                     help="Sliding CMVN: window centred on the frame (else it ends there)."),
        click.option("--norm-vars/--no-norm-vars", default=False, show_default=True,
                     help="CMVN: normalise the variances too."),
        click.option("--max-clipped", type=FiniteFloatRange(min=0, max=1), default=0.01,
                     show_default=True, help="Largest fraction of samples at full scale "
                     "accepted; a more clipped file is an error (1: no check)."),
        click.option("--max-utterance-bytes", type=IntRange(min=8),
                     default=MAX_UTTERANCE_BYTES, show_default=True,
                     help="Most samples decoded for one utterance, as float64 bytes (8 a "
                          "sample; the default, 2 GiB, is 4.6 hours at 16 kHz), checked from "
                          "the file's header before decoding; a longer recording is an error "
                          "(cut it with a segments file)."),
        click.option("-j", "--jobs", type=IntRange(min=1), default=DEFAULT_JOBS,
                     show_default=True, help="Most worker processes computing features: one "
                     "per 7.5 minutes of audio (from the files' headers) and one per CPU, up to this "
                     "number, since starting them costs more than a little audio takes (1: in "
                     "this process). "
                     "The features are the same whatever the number."),
        click.option("--verbose", type=Verbose(), default=None, metavar="N",
                     help="Kaldi's --verbose=N: 1 or more logs emkit's information on stderr, as "
                          "'emkit -v features' does; -2 or less prints errors only, no warnings "
                          "or notes [default: 0, warnings and errors only]."),
        click.option("--print-args/--no-print-args", default=None,
                     help="Kaldi's --print-args: print the command line on stderr [default: not "
                          "printed, unlike Kaldi's programs]."),
        click.option("--keep-going", is_flag=True,
                     help="Leave out an utterance that cannot be used (bad audio, or a file "
                          "that wav.scp lists but does not exist): a warning names it, a last "
                          "one counts them, the summary line says how many of all were "
                          "written; write the others, as Kaldi's tools do: the exit status is 0 "
                          "unless none could be used [default: the first such utterance is an "
                          "error, nothing is written]."),
    ]
    for option in reversed(opts):
        f = option(f)
    return f


@click.command("features", cls=KaldiStyleCommand)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", type=click.Path(), required=True,
              help="A PATH.ark: a Kaldi archive and PATH.scp; a name without a feature-file "
                   "suffix: a directory of <utterance-id>.npy files (created when missing). "
                   "Other feature-file suffixes (.h5, .npz, .npy, .scp) are refused.")
@click.option("--config", "config_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="A Kaldi options file (conf/mfcc.conf, conf/fbank.conf, conf/vad.conf: "
                   "--name=value lines, # comments), read as Kaldi's --config=FILE; may be "
                   "repeated (a later file overrides an earlier one); options given on the "
                   "command line override the files'.  An unknown option is an error.  "
                   "No --dither in a compute-mfcc/fbank-feats file: emkit's 0, not Kaldi's 1 "
                   "(a note on stderr says so).")
@click.option("--write-utt2num-frames/--no-write-utt2num-frames", default=True,
              show_default=True, help="Also write the frame count of each utterance (Kaldi's "
              "utt2num_frames): DIR/feats.ark: DIR/utt2num_frames; another NAME.ark: "
              "NAME.utt2num_frames; a directory of .npy files: DIR/utt2num_frames.")
@_options
@progress_option
def features(inputs, output, jobs, keep_going, progress, config_files, write_utt2num_frames,
             **options):
    """Compute features of audio INPUTS: WAV/FLAC files, directories of them (recursively) or
    Kaldi data directories (wav.scp with plain paths, optional segments, whose optional fifth
    field is the segment's channel, and utt2spk).

    \b
    Kaldi-compatible (kaldi-native-fbank), then, as in Kaldi's speaker recipes:
    VAD decisions on the log energy, deltas, CMVN over all frames, voiced frames kept.
    A file is an utterance named after the file (a.wav -> a); in a data directory the
    ids of wav.scp or segments.  Bad audio (unreadable, wrong sample rate, empty, NaN,
    clipped, silent) is an error naming the file (the first in input order); no output is
    written unless every utterance succeeds, or --keep-going leaves such utterances out.
    Kaldi's spellings of the options work too, as in --config files: --sample-frequency=8000,
    --snip-edges=false, --use_energy=false, --htk-compat=false (its default only), and
    Kaldi's generic --verbose=N and --print-args.
    """
    kind = options["kind"]
    merge_sample_frequency(options, _explicit)
    check_fixed_given(kind)
    names_by_file = {}
    sources = _read_config_files(config_files, kind, options, names_by_file)
    quiet = kaldi_generic_options(options)  # --verbose <= -2: no warning or note
    for name, why in (("num_ceps", "filterbank energies have --num-mel-bins values per frame"),
                      ("cepstral_lifter", "it scales cepstra, which filterbanks do not have")):
        if kind == "fbank" and _explicit(name):
            raise click.UsageError(f"--{name.replace('_', '-')} does not apply to --type fbank "
                                   f"({why})")
    try:
        from .. import audio
        from ..io.lists import check_writable
    except ImportError as exc:  # pragma: no cover - the package itself needs no extra
        raise click.ClickException(str(exc)) from None
    config = _config(audio, sources, **options)
    try:
        audio.output_kind(output)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="-o/--output") from None
    # (with --keep-going, a missing audio file of wav.scp is an utterance to leave out)
    utterances = audio.find_utterances(list(inputs), missing_ok=keep_going)
    read = [u.path for u in utterances] + [
        os.path.join(i, name) for i in inputs for name in ("wav.scp", "segments", "utt2spk")
        if os.path.isdir(i) and os.path.isfile(os.path.join(i, name))]
    if output.lower().endswith(".ark"):
        check_outputs({"-o/--output": output, "-o/--output (its .scp)": output[:-4] + ".scp"},
                      {"INPUTS": read})
    elif os.path.exists(output) and not os.path.isdir(output):
        raise click.UsageError(f"output {output!r} is a file; give a directory or a .ark path")
    elif not os.path.isdir(output):
        check_writable(output)  # the directory can be created (a missing parent: exit 1)
    else:
        existing = {f"-o/--output ({u.id}.npy)": os.path.join(output, f"{u.id}.npy")
                    for u in utterances if os.path.exists(os.path.join(output, f"{u.id}.npy"))}
        # only an <id>.npy with the name of an input file can be that input
        names = {os.path.basename(p).lower() for p in read}
        check_outputs({option: path for option, path in existing.items()
                       if os.path.basename(path).lower() in names}, {"INPUTS": read})
        check_outputs(existing, {})  # every existing <id>.npy: refused when read-only
    num_frames = os.fspath(audio.utt2num_frames_path(output)) if write_utt2num_frames else None
    if num_frames is not None and os.path.isdir(os.path.dirname(os.path.abspath(num_frames))):
        check_outputs({"--write-utt2num-frames": num_frames}, {"INPUTS": read})
    for module in ("kaldi_native_fbank", "soundfile"):
        try:
            audio._read.require(module)
        except ImportError as exc:
            raise click.ClickException(str(exc)) from None
    try:
        audio._kaldi_features.check_options(config.kaldi)
    except ValueError as exc:
        raise click.UsageError(_from_files(str(exc), sources)) from None
    try:
        shapes = audio.compute_features(list(inputs), output, config, jobs=jobs,
                                        progress=progress,
                                        seconds_per_process=audio.SECONDS_PER_PROCESS,
                                        keep_going=keep_going, utt2num_frames=num_frames)
    except audio.AudioError as exc:
        if keep_going:  # (none of the utterances could be used)
            raise
        # (the lists were read above: this is an utterance, the first in input order of those
        # that cannot be used; the others are unknown until it is fixed or left out)
        raise audio.AudioError(f"{exc}. Nothing was written; --keep-going leaves out the "
                               "utterances that cannot be used, each named in a warning, and "
                               "writes the others") from None
    frames = sum(shape[0] for shape in shapes.values())
    dim = next(iter(shapes.values()))[1]
    # (with --keep-going the exit status is 0, as Kaldi's tools exit 0 when one succeeds)
    click.echo(f"{kind}: {utterances_written(len(shapes), len(utterances))}, "
               f"{plural(frames, 'frame')} x {plural(dim, 'feature')} -> {output}")
    if not output.lower().endswith(".ark") and not quiet:
        _warn_stale(output, shapes, num_frames is not None)
    # (said at the end: an error stays the one line on stderr)
    if not _explicit("dither") and not quiet:
        from ._kaldi_config import dither_note

        note = dither_note(names_by_file, kind)
        if note is not None:
            click.echo(f"emkit features: note: {note}", err=True)


def _warn_stale(directory, written, num_frames_written):
    """One line on stderr when ``directory`` holds .npy files of another run (kept, not removed):
    given as FEATURES, the directory stands for all of them."""
    stale = sum(1 for entry in os.scandir(directory)
                if entry.name.lower().endswith(".npy") and not entry.name.startswith(".")
                and entry.name[:-4] not in written and entry.is_file())
    if stale:
        click.echo(f"emkit features: warning: {directory!r} also holds {stale} other .npy "
                   f"file(s), not written by this run (kept; a directory given as FEATURES reads "
                   "them all" + ("; its utt2num_frames lists this run's utterances only"
                                 if num_frames_written else "") + ")", err=True)


def _read_config_files(paths, kind, options, names_by_file) -> dict:
    """Put the values of the Kaldi options files ``paths`` into ``options`` (those not given on
    the command line); return ``{option name: "--config FILE line N"}`` of those put.
    ``names_by_file`` gets ``{path: Kaldi option names it sets}``."""
    from ._kaldi_config import read_kaldi_configs

    sources = {}
    for name, (value, where) in read_kaldi_configs(paths, click.get_current_context(),
                                                   kind, names_by_file).items():
        if not _explicit(name) and not (name == "sample_rate" and _explicit("sample_frequency")):
            options[name] = value
            sources[name] = where
    return sources


def _config(audio, sources, *, kind, sample_rate, **options):
    """The FeatureConfig of the options: the KaldiOptions ones by name (as the recipe's
    [features] keys), the others FeatureConfig's.  ``sources``: the options read from a Kaldi
    options file, and where (named by the errors)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(audio.KaldiOptions)}
    kaldi_options = {k: v for k, v in options.items() if k in names}
    pipeline = {k: v for k, v in options.items() if k not in names}
    try:
        rate = float(sample_rate)
    except OverflowError:  # (before any option is checked, as click checks its own)
        from .._describe import describe
        raise click.BadParameter(f"must be a number within float64's range; got "
                                 f"{describe(sample_rate)}", param_hint="'--sample-rate'") from None
    try:
        kaldi = audio.KaldiOptions(kind=kind, sample_frequency=rate, **kaldi_options)
        return audio.FeatureConfig(kaldi=kaldi, **pipeline)
    except ValueError as exc:  # a value (NaN) or combination of options click could not check
        message = str(exc)
        name = message.split(" ", 1)[0]  # the configs' messages start with the field's name
        if name in options:
            hint = f"--{name.replace('_', '-')}"
            if name in sources:
                hint += f" (from {sources[name]})"
            others = {n: where for n, where in sources.items() if n != name}
            raise click.BadParameter(_from_files(message, others), param_hint=hint) from None
        raise click.UsageError(_from_files(message, sources)) from None


def _from_files(message: str, sources: dict) -> str:
    """``message`` about several options, and where those of them read from a file were."""
    names = {"sample_frequency" if name == "sample_rate" else name: where
             for name, where in sources.items()}
    named = [f"--{name.replace('_', '-')} from {where}" for name, where in names.items()
             if re.search(rf"\b{name}\b", message)
             or (name == "sample_frequency" and "Nyquist" in message)]
    return f"{message} ({'; '.join(named)})" if named else message
