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
// Opening reads every record (after the index checkpoint, if one matches:
// see below). The first frame that is short, has a length
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
// # Index checkpoints
//
// Opening costs time in proportion to what was appended since the last
// checkpoint, not to the whole log: DIR/<repo>.idx holds the index as of a
// prefix of the log, and opening loads it and scans only the records after
// that prefix (recovering that tail exactly as above). Checkpoints are
// written by closing a repository (idle unload, Store.Close) when its log
// has at least 4,096 records (or Config.CheckpointEvery, if smaller) and
// changed, and, while it is open, in the background once the records
// appended since the last one reach Config.CheckpointEvery (65,536) and a
// quarter of what that one covered, so checkpoint writing stays
// proportional to appending. A checkpoint is written to NAME.idx.tmp,
// fsynced, renamed and the directory fsynced: a crash leaves the old one,
// the new one or none under the name.
//
//	header  (88 bytes)
//	0   magic "GOATIDX\x00"
//	8   version u32 = 1
//	12  log id (16 bytes): the log incarnation it was made from
//	28  end u64: byte length of the covered log prefix (a frame boundary)
//	36  records u64: commit records in the prefix
//	44  lastSeq u64: seq of the prefix's last commit record
//	52  flags u32: bit 0, the prefix ends with a close marker
//	56  tailCRC u32: CRC-32C of the log's bytes [max(32, end-4096), end)
//	60  keys u32, 64 edges u32 (parent edges)
//	68  bodyLen u64, 76 bodyCRC u32 (CRC-32C of the body), 80 zero u32
//	84  crc u32 over bytes 0..84
//
//	body
//	keys    keys x (len u8, name): item keys, in order of first appearance
//	sorted  keys x uvarint: key indices in key order
//	commits records x (id 32, uvarint seq - previous seq,
//	        varint ts - previous ts, uvarint gap (pos - end of the previous
//	        record; close markers), uvarint frame size, uvarint key index,
//	        flags u8, uvarint nparents, nparents x uvarint (ordinal -
//	        parent's ordinal), uvarint (ordinal - delta base's) if a delta)
//
// Opening uses a checkpoint only if its header and body checksums hold,
// its log id is the log's, the log is at least end bytes long and its
// bytes before end match tailCRC, and its body decodes to the structure a
// log scan would produce (increasing sequence numbers, frames inside the
// prefix, parents and delta bases earlier in the log and of the same item,
// no id twice, every byte used). Anything else is logged and the index is
// rebuilt from the whole log. So a stale checkpoint (an older prefix) is
// used and the rest scanned; one of another log incarnation (after repair,
// or a recreated repository), of a log that was truncated or overwritten
// near the prefix's end, or one that is torn or corrupt, is not.
//
// What a checkpoint trades: the records it covers are not read at open, so
// media damage inside that prefix is no longer refused by opening. It is
// still refused by every read of the damaged record (each read checks the
// frame's CRC, sequence number and id against the index: core.ErrCorrupt)
// and found by Fsck, which always reads everything. TestIndex_Checkpoint
// checks that, after crashes, torn and truncated logs and stale, foreign,
// torn or corrupt checkpoints, the index opened with checkpoints equals the
// one rebuilt from the whole log.
//
// # Data directory
//
//	DIR/LOCK                     flock(2) held by the open Store
//	DIR/NODE                     node id and sequence lease (see seq.go)
//	DIR/<repo>.log               one log per repository
//	DIR/<repo>.idx               its index checkpoint, if any (derived data: deleting it costs one full scan)
//	DIR/<repo>.log.damaged-<ns>  files moved aside by recovery or fsck
//
// Repository names match ^[a-z0-9][a-z0-9_.-]{0,127}$ without "..", so a
// name is always a safe file name.
package storage
