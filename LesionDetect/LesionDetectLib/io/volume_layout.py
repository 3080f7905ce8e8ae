"""What a NRRD, NIfTI or MetaImage header promises, checked against the file before a voxel is read.

`read_layout` parses the header (refusing a file that is not what its name says, such as a text
file named `.nii.gz`); `check_layout` compares the bytes the header's voxel count needs with what
the file holds: the file size for raw data, the gzip trailer (or a streamed count) and the deflate
bound (at most 1032 bytes out per byte in) for compressed data, and the memory available for the
read. So a truncated file is refused instead of read with zeros filling its missing slices, and a
200-byte file whose header claims 8 GB is refused before anything is allocated.
"""

from __future__ import annotations

import math
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from LesionDetectLib.errors import LesionDetectError

DEFLATE_MAX_RATIO = 1032  # the most bytes one byte of deflate data can expand to (zlib's technical notes)
DEFLATE_SLACK_BYTES = 4096  # headers, trailers and block overhead around the deflate data
GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib: expect a gzip header and trailer
COUNT_CHUNK_BYTES = 1 << 22
COPIES_WHEN_READ = 2  # SimpleITK's buffer and the numpy array made from it exist together while reading
NIFTI_HEADER_BYTES = {1: 352, 2: 544}  # header plus the 4-byte extension flag: the least vox_offset
NRRD_TYPE_BYTES = (  # the first pattern that matches a NRRD "type" gives the bytes per value
    (r"int8|char", 1),
    (r"int16|short", 2),
    (r"int64|long ?long", 8),
    (r"int32|int", 4),
    (r"float", 4),
    (r"double", 8),
)
METAIMAGE_TYPE_BYTES = {"CHAR": 1, "UCHAR": 1, "SHORT": 2, "USHORT": 2, "INT": 4, "UINT": 4, "LONG": 4}
METAIMAGE_TYPE_BYTES |= {"ULONG": 4, "LONG_LONG": 8, "ULONG_LONG": 8, "FLOAT": 4, "DOUBLE": 8}
METAIMAGE_HEADER_LINES = 1000
METAIMAGE_LINE_BYTES = 1 << 20


@dataclass(frozen=True)
class Layout:
    """Where a volume file's voxels are and how many bytes they take, as its header says."""

    format: str  # "NRRD", "NIfTI", "MetaImage"
    sizes: tuple[int, ...]  # values per axis, as the header lists them (components included)
    value_bytes: int | None  # bytes per value; None when the header's type is not one we size
    encoding: str  # "raw", "gzip", "zlib", or another one ("ascii", "bzip2"), whose size is not checked
    data_path: Path | None  # the file holding the voxels; None when they are spread over several files
    data_offset: int  # where the voxels start in `data_path` (raw) or in the decompressed stream
    at_end: bool = False  # raw data that fills the end of `data_path` (NRRD byte skip -1, MetaImage HeaderSize -1)
    compressed_offset: int = 0  # where the compressed stream starts in `data_path`
    compressed_bytes: int | None = None  # the size of the compressed stream the header gives (MetaImage)
    fields: dict = field(default_factory=dict)  # the header's fields (NIfTI: "dims", "pixdim")

    @property
    def voxel_bytes(self) -> int | None:
        """The bytes all voxels take once decoded."""
        if self.value_bytes is None:
            return None
        return math.prod(self.sizes) * self.value_bytes


def read_layout(path: Path, format_name: str) -> Layout:
    """The header of `path` read as `format_name` ("NRRD", "NIfTI", "MetaImage"); refused if it is not one."""
    try:
        if format_name == "NRRD":
            return _nrrd_layout(path)
        if format_name == "NIfTI":
            return _nifti_layout(path)
        return _metaimage_layout(path)
    except OSError as error:
        raise LesionDetectError(f"'{path}' could not be opened ({error.strerror or error}).") from None


def check_layout(path: Path, layout: Layout, *, in_place: bool = False) -> None:
    """Refuse `path` when it holds fewer voxel bytes than its header needs, or reading them needs more memory
    than is available (`in_place`: the voxels are mapped from the file, not read into memory)."""
    needed = layout.voxel_bytes
    if needed is None:
        return
    described = _described(layout)
    if layout.data_path is not None:
        _check_file_size(path, layout, described)
    if not in_place:
        _check_memory(path, needed * COPIES_WHEN_READ, described)


def _check_file_size(path: Path, layout: Layout, described: str) -> None:
    if not layout.data_path.is_file():
        raise LesionDetectError(
            f"'{path}' names the data file '{layout.data_path.name}' in its header, which does not exist; "
            "keep the header and its data file together in one folder."
        )
    file_bytes = layout.data_path.stat().st_size
    if layout.encoding == "raw":
        held = file_bytes if layout.at_end else file_bytes - layout.data_offset
        if held < layout.voxel_bytes:
            held_text = _held(held, layout.voxel_bytes)
            raise _shorter(path, f"{described}, but the file holds only {held_text} of voxel data")
    elif layout.encoding in ("gzip", "zlib"):
        _check_compressed(path, layout, file_bytes, described)


def nrrd_header(path: Path) -> tuple[dict, int] | None:
    """The fields of a NRRD header and the byte offset where attached data starts, or None if not NRRD."""
    fields = {}
    with open(path, "rb") as header:
        if not header.readline(64).startswith(b"NRRD"):
            return None
        for raw_line in header:
            line = raw_line.decode("latin-1").strip()
            if not line:
                break
            key, separator, value = line.partition(": ")
            if separator and not line.startswith("#"):
                fields[key.strip()] = value.strip()
        return fields, header.tell()


def available_memory_bytes() -> int | None:
    """Memory this process can still get: MemAvailable (or free pages), capped by a cgroup limit; None if unknown."""
    candidates = []
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not candidates:
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            candidates.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(candidates) if candidates else None


def _nrrd_layout(path: Path) -> Layout:
    header = nrrd_header(path)
    if header is None:
        raise _not_valid(path, "NRRD", "it does not start with the 'NRRD000N' line every NRRD file starts with")
    fields, header_end = header
    missing = [key for key in ("type", "dimension", "sizes", "encoding") if key not in fields]
    if missing:
        raise _not_valid(path, "NRRD", f"its header has no '{missing[0]}' field")
    try:
        sizes = tuple(int(value) for value in fields["sizes"].split())
        dimension = int(fields["dimension"])
        line_skip = int(fields.get("line skip", fields.get("lineskip", 0)))
        byte_skip = int(fields.get("byte skip", fields.get("byteskip", 0)))
    except ValueError:
        raise _not_valid(path, "NRRD", "its sizes, dimension or skip fields are not whole numbers") from None
    if len(sizes) != dimension or min(sizes) < 1:
        raise _not_valid(path, "NRRD", f"its sizes '{fields['sizes']}' do not give {dimension} axes of ≥ 1 value")
    encoding = {"gz": "gzip", "txt": "ascii", "text": "ascii", "bz2": "bzip2"}.get(fields["encoding"].lower())
    encoding = encoding or fields["encoding"].lower()
    value_bytes = _nrrd_value_bytes(fields)
    data_file = fields.get("data file", fields.get("datafile"))
    if data_file is None:
        data_path, start = path, header_end
    elif data_file.split()[0] == "LIST" or "%" in data_file or len(data_file.split()) > 1:
        data_path, start = None, 0  # data spread over several files: not sized here
    else:
        data_path, start = path.parent / data_file, 0
    if line_skip:
        data_path = None  # the skipped lines' length is unknown until they are read
    if encoding == "raw":
        offset = start + max(byte_skip, 0)
        return Layout("NRRD", sizes, value_bytes, encoding, data_path, offset, byte_skip == -1, fields=fields)
    return Layout("NRRD", sizes, value_bytes, encoding, data_path, max(byte_skip, 0), False, start, fields=fields)


def _nrrd_value_bytes(fields: dict) -> int | None:
    type_name = fields["type"].lower()
    if type_name == "block":
        try:
            return int(fields.get("block size", fields.get("blocksize", "")))
        except ValueError:
            return None
    return next((size for pattern, size in NRRD_TYPE_BYTES if re.search(pattern, type_name)), None)


def _nifti_layout(path: Path) -> Layout:
    with open(path, "rb") as stream:
        start = stream.read(1 << 16)
    gzipped = start[:2] == GZIP_MAGIC
    header = start
    if gzipped:
        try:
            header = zlib.decompressobj(GZIP_WBITS).decompress(start, NIFTI_HEADER_BYTES[2])
        except zlib.error as error:
            raise _not_valid(path, "NIfTI", f"its gzip data cannot be decompressed ({error})") from None
    for endian in "<>":
        header_size = int(np.frombuffer(header, endian + "i4", 1)[0]) if len(header) >= 4 else 0
        if header_size == 348 and len(header) >= 348:
            version, magic = 1, header[344:348]
            dims = np.frombuffer(header, endian + "i2", 8, offset=40).astype(int)
            value_bits = int(np.frombuffer(header, endian + "i2", 1, offset=72)[0])
            pixdim = np.frombuffer(header, endian + "f4", 8, offset=76).astype(float)
            vox_offset = float(np.frombuffer(header, endian + "f4", 1, offset=108)[0])
            break
        if header_size == 540 and len(header) >= 540:
            version, magic = 2, header[4:8]
            value_bits = int(np.frombuffer(header, endian + "i2", 1, offset=14)[0])
            dims = np.frombuffer(header, endian + "i8", 8, offset=16).astype(int)
            pixdim = np.frombuffer(header, endian + "f8", 8, offset=104).astype(float)
            vox_offset = float(np.frombuffer(header, endian + "i8", 1, offset=168)[0])
            break
    else:
        if not header:
            raise _not_valid(path, "NIfTI", "it is empty")
        compression = "" if gzipped or not path.name.lower().endswith(".gz") else "it is not gzip-compressed, and "
        raise _not_valid(path, "NIfTI", f"{compression}it does not start with a NIfTI-1 or NIfTI-2 header")
    if not 1 <= dims[0] <= 7:
        raise _not_valid(path, "NIfTI", f"its header gives {dims[0]} dimensions (dim[0] must be 1 to 7)")
    sizes = tuple(int(max(size, 1)) for size in dims[1 : 1 + dims[0]])
    fields = {"dims": dims, "pixdim": pixdim}
    single_file = magic in (b"n+1\0", b"n+2\0")
    data_offset = max(int(vox_offset), NIFTI_HEADER_BYTES[version]) if np.isfinite(vox_offset) else 0
    value_bytes = value_bits // 8 if value_bits > 0 and value_bits % 8 == 0 else None
    encoding = "gzip" if gzipped else "raw"
    return Layout("NIfTI", sizes, value_bytes, encoding, path if single_file else None, data_offset, fields=fields)


def _metaimage_layout(path: Path) -> Layout:
    fields, data_start = {}, None
    with open(path, "rb") as stream:
        for _ in range(METAIMAGE_HEADER_LINES):
            line = stream.readline(METAIMAGE_LINE_BYTES).decode("latin-1").strip()
            key, separator, value = line.partition("=")
            if not separator or not key.strip() or " " in key.strip():
                break
            fields[key.strip()] = value.strip()
            if key.strip() == "ElementDataFile":
                data_start = stream.tell()
                break
    if data_start is None:
        reason = "no 'ElementDataFile' line ends its header" if fields else "it does not start with 'Key = value' lines"
        raise _not_valid(path, "MetaImage", reason)
    try:
        sizes = tuple(int(value) for value in fields["DimSize"].split())
        channels = int(fields.get("ElementNumberOfChannels", 1))
        header_size = int(fields.get("HeaderSize", 0))
        compressed_bytes = int(fields["CompressedDataSize"]) if "CompressedDataSize" in fields else None
    except KeyError:
        raise _not_valid(path, "MetaImage", "its header has no 'DimSize'") from None
    except ValueError:
        raise _not_valid(path, "MetaImage", "its DimSize or another size is not a whole number") from None
    if not sizes or min(sizes) < 1:
        raise _not_valid(path, "MetaImage", f"its DimSize '{fields['DimSize']}' is not a list of sizes ≥ 1")
    element_type = fields.get("ElementType", "").upper().removeprefix("MET_").removesuffix("_ARRAY")
    value_bytes = METAIMAGE_TYPE_BYTES.get(element_type)
    binary = fields.get("BinaryData", "True").lower() in ("true", "1", "yes")
    compressed = fields.get("CompressedData", "False").lower() in ("true", "1", "yes")
    encoding = "zlib" if compressed else "raw" if binary else "ascii"
    data_file = fields["ElementDataFile"]
    if data_file.upper() == "LOCAL":
        data_path, start = path, data_start
    elif data_file.upper().startswith("LIST") or "%" in data_file or len(data_file.split()) > 1:
        data_path, start = None, 0
    else:
        data_path, start = path.parent / data_file, max(header_size, 0)
    sizes = (*sizes, channels) if channels > 1 else sizes
    if encoding == "zlib":
        return Layout("MetaImage", sizes, value_bytes, encoding, data_path, 0, False, start, compressed_bytes, fields)
    return Layout("MetaImage", sizes, value_bytes, encoding, data_path, start, header_size == -1, fields=fields)


def _check_compressed(path: Path, layout: Layout, file_bytes: int, described: str) -> None:
    """Compressed data: enough compressed bytes, a deflate bound that reaches the size, and (gzip) the full size."""
    held = file_bytes - layout.compressed_offset
    needed = layout.data_offset + layout.voxel_bytes
    kind = "gzip" if layout.encoding == "gzip" else "zlib"
    if layout.compressed_bytes is not None and held < layout.compressed_bytes:
        raise _shorter(
            path,
            f"its header gives {_size(layout.compressed_bytes)} of compressed data, "
            f"the file holds {_held(held, layout.compressed_bytes)}",
        )
    bound = max(held, 0) * DEFLATE_MAX_RATIO + DEFLATE_SLACK_BYTES
    if bound < needed:
        raise _shorter(
            path,
            f"{described}, but its {_size(max(held, 0))} of {kind}-compressed data "
            f"can expand to {_size(bound)} at most",
        )
    if layout.encoding != "gzip":
        return
    with open(layout.data_path, "rb") as stream:
        stream.seek(layout.compressed_offset)
        if stream.read(2) != GZIP_MAGIC:
            raise _not_valid(path, layout.format, "its voxel data is not gzip-compressed as its header says")
        stream.seek(-4, os.SEEK_END)
        recorded = int.from_bytes(stream.read(4), "little")  # ISIZE: the decompressed size modulo 2**32
    if recorded == needed % 2**32:
        return
    decompressed = _gzip_bytes(path, layout, needed)
    if decompressed < needed:
        held_voxels = max(decompressed - layout.data_offset, 0)
        raise _shorter(
            path,
            f"{described}, but the file holds only {_held(held_voxels, layout.voxel_bytes)} of voxel data "
            "once decompressed",
        )


def _gzip_bytes(path: Path, layout: Layout, needed: int) -> int:
    """The decompressed size of the gzip member(s) at `offset`, counted until it reaches `needed`."""
    total, member, fresh = 0, zlib.decompressobj(GZIP_WBITS), True
    with open(layout.data_path, "rb") as stream:
        stream.seek(layout.compressed_offset)
        while total < needed:
            pending = stream.read(COUNT_CHUNK_BYTES)
            if not pending:
                break
            while pending and total < needed:
                try:
                    total += len(member.decompress(pending, COUNT_CHUNK_BYTES))
                except zlib.error as error:
                    if fresh and total:
                        return total  # bytes after the last member, which gzip readers ignore
                    raise _not_valid(path, layout.format, f"its gzip data cannot be decompressed ({error})") from None
                fresh = False
                if member.eof:
                    pending = member.unused_data.lstrip(b"\0")  # zero padding may follow a member
                    member, fresh = zlib.decompressobj(GZIP_WBITS), True
                else:
                    pending = member.unconsumed_tail
    return total


def _check_memory(path: Path, needed: int, described: str) -> None:
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise LesionDetectError(
            f"'{path}' is too large to read here: {described}, and reading them needs about {_size(needed)} of "
            f"memory, but only {_size(max(available, 0))} is available. Close other programs, crop or downsample "
            "the volume, or use a computer with more memory."
        )


def _described(layout: Layout) -> str:
    """'its header describes 2048×2048×1000 voxels of 2 bytes (8.4 GB)'."""
    plural = "s" if layout.value_bytes != 1 else ""
    values = "voxels" if len(layout.sizes) <= 3 else "values"
    return (
        f"its header describes {'×'.join(map(str, layout.sizes))} {values} of {layout.value_bytes} byte{plural} "
        f"({_size(layout.voxel_bytes)})"
    )


def _shorter(path: Path, details: str) -> LesionDetectError:
    return LesionDetectError(
        f"'{path}' is shorter than its header says: {details}. The file is truncated or damaged "
        "(an interrupted copy or download?); copy or export it again."
    )


def _not_valid(path: Path, format_name: str, reason: str) -> LesionDetectError:
    return LesionDetectError(
        f"'{path}' is not a valid {format_name} file: {reason}. Check that the file is the scan you meant, "
        "and that its name ends in the suffix of its format."
    )


def _held(count: int, needed: int) -> str:
    """`count` bytes as `_size` writes them, or exactly when that would read the same as `needed`."""
    count = max(count, 0)
    return f"{count:,} bytes (of {needed:,})" if _size(count) == _size(needed) else _size(count)


def _size(count: int) -> str:
    """Bytes as '211 bytes', '75.3 kB', '8.4 GB'."""
    if count < 1000:
        return f"{count} byte{'s' if count != 1 else ''}"
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12)):
        if count < scale * 1000 or unit == "TB":
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
