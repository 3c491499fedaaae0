// @goat-gateway/sdk: a local replica of goat-gateway repositories with live
// sync, for browsers and Node 20. See docs/sdk-ts.md.

export { Goat, subjectOf, type GoatOptions, type Status } from "./client.js";
export { Replica, type Version } from "./replica.js";
export { LiveQuery, sameItem, type Item, type Query, type Source } from "./query.js";
export { MemoryStore, type Persistence, type RepoMeta, type StoredSession } from "./store.js";
export { IndexedDBStore } from "./idb.js";
export { OPFSStore, openPersistence } from "./opfs.js";
export { crc32c, decodeLog, encodeHeader, encodeRecords, type DecodedLog } from "./logformat.js";
export { GatewayClient, type HTTPOptions, type LogPage, type SyncRequest, type SyncResponse, type Info, type RepoInfo, type PushResult } from "./http.js";
export { GoatError, isCode, problemCode, type ErrorCode } from "./errors.js";
export { canonicalize, parseJSON, equalJSON, compareStrings, type JSONValue, type JSONObject } from "./json.js";
export {
  checkCommit,
  canonicalBody,
  commitJSON,
  computeId,
  seal,
  signCommit,
  verifySig,
  decodeCommit,
  parseSchemaRef,
  validKey,
  validRepoName,
  MergeAuthor,
  type Commit,
  type UnsealedCommit,
} from "./commit.js";
export { applyDelta, diff, encode, type Delta, type Op } from "./delta.js";
export { Registry, validate, withDefaults, fieldType, type Schema, type Field, type FieldType, type Upgrade } from "./schema.js";
export { diffText, mergeText, mergeSet, mergeMap, mergeValues, mergeBase, mergeCommit, mergeAll, GroupSize, verifyMerge, resolve, readAt, viewHeads, type Splice, type View, type Resolved } from "./merge.js";
export { Filter, buildFilter, filterParams, rate, type FilterJSON } from "./bloom.js";
export { Digest } from "./digest.js";
export { clone as cloneRepo, reconcile, type Transport, type Local, type Stats } from "./sync.js";
export { generateKeyPair, keyPairFromSeed, sessionId, sessionChallenge, type KeyPair } from "./crypto.js";
