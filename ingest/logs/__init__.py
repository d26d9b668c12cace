"""Log ingest: FreeWheel v4 log files into the partitioned Parquet lake (`b2p ingest`).

contract   the columns a file must have, header matching, the mapping file (aliases, keys)
values     raw strings to typed lake columns, per-row problems
dialect    the delimiter of a file (and, for b2p inspect, encoding, BOM, line endings)
text       the decompressed bytes, checked: gzip errors, NUL bytes, CR-only line ends
records    the record rules and limits; the exact (csv module) parser; every line accounted for
fast_records  pyarrow's parser, used when its result provably obeys the rules
pieces     the text cut into record-aligned pieces (lines too long streamed past), one parsed
reader     a file's pieces parsed and worked on by a thread pool, results in file order
verdict    whether a file was understood: all or too many rows rejected means quarantine
writers    Parquet per event hour and the rejects file, invisible until committed
lake       the lake's layout, the ingest log and the commit protocol (VersionCommit)
attempt    one source version read, validated and committed (ingest_object)
runner     the plan and the fan-out over files (in process or a worker pool)
runtime    process-wide memory settings of an ingest process
progress   the progress bar
command    the `b2p ingest` command
"""
