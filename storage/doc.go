// Package storage keeps goat-gateway's repositories on disk and in memory:
// one append-only log file per repository, recovered on open and appended
// with group commit, and an in-memory index of every open repository
// (commits by id, children, heads and current value per item, log order,
// count and digest).
//
// # Guarantees
//
//   - Durable acknowledgement: Repo.Append returns only after the records it
//     reports as appended (and any it reports as duplicates) are on disk and
//     fsynced. Concurrent appenders share one write and one fsync (group
//     commit). Config.NoSync turns the fsyncs off, for tests and benchmarks
//     only: with it, a power loss may lose acknowledged records.
//   - Crash safety: a crash at any instant leaves every log in a state that
//     reopens, with every acknowledged record present and no record half
//     present. Records that were being written when the crash came appear
//     whole or not at all.
//   - Corruption is refused, not guessed away: damage that cannot be the
//     torn tail of the last write makes opening fail with core.ErrCorrupt.
//     Fsck reports it and, with repair, keeps the good prefix and moves the
//     damaged file aside; nothing is ever deleted.
//   - Order: a repository's log is a topological order of its commit graph
//     (a commit follows its parents), and records carry node-wide sequence
//     numbers that strictly increase along every log and across the node
//     (SSE event ids). Readers only ever see durable records.
//
// # Log file format
//
// All integers are little-endian. CRC is CRC-32C (Castagnoli). A log file
// is a header followed by records, and nothing else:
//
//	file    = header record*
//
//	header  (32 bytes)
//	+----------------+-------------+----------------------+-----------+
//	| magic          | version     | log id               | crc       |
//	| "GOATLOG\x00"  | u32 = 1     | 16 random bytes      | u32       |
//	+----------------+-------------+----------------------+-----------+
//	0                8             12                     28          32
//	crc covers bytes 0..28.
//
//	record  (8 + length bytes)
//	+-------------+-------------+-------------------------------------+
//	| length u32  | crc u32     | payload (length bytes)              |
//	+-------------+-------------+-------------------------------------+
//	crc covers the payload; 17 <= length <= 4 MiB.
//
//	payload
//	+-------------+----------------+----------+-----------------------+
//	| seq u64     | group u64      | kind u8  | body                  |
//	+-------------+----------------+----------+-----------------------+
//	seq:   node-wide sequence number, strictly increasing along the file.
//	group: file offset of the first byte of the write (group commit) that
//	       carried this record; recovery uses it to tell a torn last write
//	       from damage to acknowledged data.
//	kind:  1 = commit; 2 = close marker. Other values are refused (a new
//	       kind needs a new format version).
//
//	close marker: a payload without body, seq = that of the last commit
//	record before it (0 if none), written (as a write of its own) and
//	synced when a log is closed cleanly. It is not a record: it has no
//	offset. It proves that every write before it was acknowledged.
//
//	commit body
//	+--------+--------+---------+-----------+-------------+-------------+
//	| id 32  | ts i64 | flags u8| nparents  | parents     | base 32     |
//	|        |        |         | u16       | 32 x n      | (if delta)  |
//	+--------+--------+---------+-----------+-------------+-------------+
//	| keylen u8 | key | commit JSON (the rest)                          |
//	+-----------+-----+-------------------------------------------------+
//	flags: bit 0 delta commit, bit 1 merge commit, bit 2 the commit's
//	       resolved value is a tombstone (data.isDeleted == true).
//	commit JSON: the canonical JSON of core.Commit, id and sig included,
//	       byte for byte what peers receive.
//
// The fields before the JSON repeat what the index needs, so that opening
// a log builds the index without parsing or hashing any JSON: the CRC
// vouches that they are the bytes this process wrote next to the JSON.
//
// Record offsets handed to callers (Record.Offset, ReadLog, FirstAfterSeq,
// LogLen) are ordinals (0, 1, 2, ...) in log order, never byte positions.
// The log id identifies one incarnation of a log: it is chosen when the file
// is created and replaced when repair rewrites the file, so a cursor or
// event id minted against an older or foreign log is detected
// (core.ErrMustReconcile in the API).
//
// # Recovery
//
// Opening reads every record. The first frame that is short, has a length
// out of range, or fails its CRC, at byte X, ends the good prefix. The rest
// of the file is then searched, byte by byte, for valid records:
//
//   - none: the tail is torn (an incomplete or zero-filled last write); the
//     file is truncated to exactly X;
//   - one whose group began after X: X lies in a write that completed before
//     a later one began, so acknowledged data is damaged: core.ErrCorrupt;
//   - only records of X's own group: the damage lies inside the last write.
//     If it has the signature of blocks that never reached the disk (a
//     512-byte aligned sector of zeros, or zeros from X to the next 4 KiB
//     boundary) it is a torn write whose later pages landed first: the file
//     is rewritten with its good prefix under a new log id and the original
//     is kept beside it as NAME.log.damaged-UNIXNANO. Otherwise
//     core.ErrCorrupt.
//
// The last write before a crash may be torn, and media damage confined to
// that one write cannot be told apart from tearing: recovery forgives it
// (a torn write was never acknowledged; media damage to exactly the last
// write of a crashed log is the one case this costs acknowledged data). A
// log closed cleanly ends with a close marker, a later write, so the same
// damage there is refused. A CRC-valid record whose content is malformed is always
// core.ErrCorrupt.
//
// # Data directory
//
//	DIR/LOCK                     flock(2) held by the open Store
//	DIR/NODE                     node id and sequence lease (see seq.go)
//	DIR/<repo>.log               one log per repository
//	DIR/<repo>.log.damaged-<ns>  files moved aside by recovery or fsck
//
// Repository names match ^[a-z0-9][a-z0-9_.-]{0,127}$ without "..", so a
// name is always a safe file name.
package storage
