"""The storage of an HDF5 dataset checked before HDF5 reads it: the bytes it declares must be
in the file, and compressed chunks must not inflate beyond their size.

HDF5's gzip (deflate) filter grows its output buffer until the compressed stream ends, whatever
the chunk's declared size: a chunk of a (4, 4) dataset can inflate to gigabytes before HDF5
notices the size is wrong (a "decompression bomb", about 1000 times the file's size).  So every
deflated chunk is inflated here first, by zlib, stopping one byte past the chunk's size.

Filters read: gzip (deflate), shuffle and fletcher32 (neither changes sizes), and lzf (h5py's),
whose format cannot expand more than about 100 times a chunk's stored bytes.  Any other filter
(szip, scale-offset, n-bit, plugins) is refused: emkit cannot bound what it would allocate.
"""

from __future__ import annotations

import zlib

import h5py
import numpy as np

#: nothing here is public API: the helpers of emkit.io.h5's checked reads (internal; their
#: un-underscored names stay importable)
__all__ = []

#: The filters emkit reads, by HDF5 code: what the chunk checks know how to bound.
READ_FILTERS = {h5py.h5z.FILTER_DEFLATE: "gzip", h5py.h5z.FILTER_SHUFFLE: "shuffle",
                h5py.h5z.FILTER_FLETCHER32: "fletcher32", h5py.h5z.FILTER_LZF: "lzf"}
#: Largest dataset (bytes) kept inside an object header ("compact" layout) that HDF5 allows.
COMPACT_LIMIT = 65536
#: A chunk may declare at most this many bytes beyond its dataset's whole size.
CHUNK_SLACK = 1 << 20
_INFLATE_STEP = 1 << 20


def storage_problem(ds: h5py.Dataset, dcpl) -> str | None:
    """What is wrong with the storage of model dataset ``ds`` (``dcpl``: its creation property
    list), or None: no dataspace, more bytes declared than the file or the dataset holds (or
    than a compact layout may), data beyond the end of the file, a chunk that inflates beyond
    its size."""
    if ds.shape is None:
        return "has no dataspace (an empty/null dataset)"
    declared = int(np.prod(ds.shape, dtype=object)) * ds.dtype.itemsize
    if declared == 0:
        return None
    file_size = ds.file.id.get_filesize()
    layout = dcpl.get_layout()
    if layout == h5py.h5d.COMPACT:
        return (f"declares {declared} bytes in a compact layout (at most {COMPACT_LIMIT})"
                if declared > COMPACT_LIMIT else None)
    if dcpl.get_nfilters():  # compressed: never expand to more than the whole file's size
        if declared > file_size:
            return f"declares {declared} bytes of compressed data in a file of {file_size} bytes (refused)"
        return compressed_chunks_problem(ds, declared)
    stored = ds.id.get_storage_size()
    if stored < declared or declared > file_size:
        return (f"declares {declared} bytes but the file holds {min(stored, file_size)} for it "
                "(truncated or forged size)")
    if layout == h5py.h5d.CONTIGUOUS:
        offset = ds.id.get_offset()
        if offset is None or offset + declared > file_size:
            return "has its data beyond the end of the file (truncated file)"
    return None


def compressed_chunks_problem(ds: h5py.Dataset, declared: int) -> str | None:
    """What is wrong with the filtered dataset ``ds`` (``declared``: its size in bytes), or None.

    Only chunk sizes are looked at; the values are HDF5's to decode afterwards.
    """
    dcpl = ds.id.get_create_plist()
    codes = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
    for code in codes:
        if code not in READ_FILTERS:
            return (f"is compressed with HDF5 filter {code}, which emkit does not read from files it "
                    f"does not trust (it reads {', '.join(READ_FILTERS.values())})")
    if h5py.h5z.FILTER_DEFLATE not in codes:
        return None
    chunk_bytes = ds.dtype.itemsize
    for n in ds.chunks or ():
        chunk_bytes *= int(n)
    if chunk_bytes > declared + CHUNK_SLACK:
        return f"declares chunks of {chunk_bytes} bytes for {declared} bytes of data (refused)"
    deflate = codes.index(h5py.h5z.FILTER_DEFLATE)
    # filters run in order when writing, so the ones after gzip are undone before it
    after = codes[deflate + 1:]
    if any(code != h5py.h5z.FILTER_FLETCHER32 for code in after):
        return "applies another filter after gzip (refused)"
    for i in range(ds.id.get_num_chunks()):
        offset = ds.id.get_chunk_info(i).chunk_offset
        skipped, raw = ds.id.read_direct_chunk(offset)
        if skipped & (1 << deflate):
            continue  # this chunk was stored uncompressed
        if after and not skipped & (1 << (deflate + 1)):
            raw = raw[:-4]  # the fletcher32 checksum
        if _inflates_beyond(raw, chunk_bytes):
            return (f"has a compressed chunk that inflates beyond the chunk's {chunk_bytes} bytes "
                    "(a decompression bomb, or a damaged chunk; refused)")
    return None


def _inflates_beyond(raw: bytes, limit: int) -> bool:
    """True when the zlib stream ``raw`` is damaged or inflates to more than ``limit`` bytes;
    never holds more than a step of the output."""
    inflater = zlib.decompressobj()
    total, data = 0, raw
    try:
        while True:
            out = inflater.decompress(data, _INFLATE_STEP)
            total += len(out)
            if total > limit:
                return True
            tail = inflater.unconsumed_tail
            if not out and (not tail or tail == data):  # nothing more comes out
                return False
            data = tail
    except zlib.error:
        return True
