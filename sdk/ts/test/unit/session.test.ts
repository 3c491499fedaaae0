import { describe, expect, it } from "vitest";
import { toBase64url } from "../../src/bytes.js";
import { keyPairFromSeed, sessionChallenge, sessionId, sha256, sign } from "../../src/crypto.js";

// The createSession example of openapi.yaml (docs/api.md, Examples): the key
// of "alice phone", registered by alice at the dev issuer's audience.
describe("createSession example", () => {
  it("derives the key, the session id and the proof", async () => {
    const kp = await keyPairFromSeed(await sha256("goat-gateway example key: alice phone"));
    expect(toBase64url(kp.publicKeyBytes)).toBe("kf1nlEH_mGk4w0hiHCkfU9xbBTwVP8Yk1lejywTpgj8");
    expect(await sessionId(kp.publicKeyBytes)).toBe("s_6nKoWz9jY_-yd_WQWiUhZJNE");
    const proof = await sign(kp.privateKey, sessionChallenge("goat-gateway", "alice", kp.publicKeyBytes, 1766392000000));
    expect(toBase64url(proof)).toBe("v8uUJjkoYAcPdLkMvjalQlh3ec_dheJPszU56OuG1pkRYa9jYvwp4Y203hi3ZZb14tKgLcy8E0V_5ZCwF5y7Cw");
  });
});
