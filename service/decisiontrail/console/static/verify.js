// Checks a decision's proof in the browser, with WebCrypto only (SHA-256, Ed25519):
// the record's hash and signature, its inclusion proof up to the Merkle root, and the signed
// C2SP checkpoint note that carries that root. The formulas are those of docs/design.md
// ("Record format"); nothing here asks the server whether it agrees.
"use strict";

(function () {
  const RECORD_DOMAIN = "decisiontrail/record/v1\n";
  const encoder = new TextEncoder();

  // RFC 8785: object members sorted by UTF-16 code units, ECMAScript number and string forms.
  function canonical(value) {
    if (value === null || typeof value !== "object") return JSON.stringify(value);
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    return "{" + Object.keys(value).sort().map(
      (key) => JSON.stringify(key) + ":" + canonical(value[key])).join(",") + "}";
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) { out.set(part, at); at += part.length; }
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function fromHex(text) {
    return new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16)));
  }

  function fromB64(text) {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  }

  function same(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  async function ed25519Verify(publicKey, signature, message) {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  }

  // RFC 9162 section 2.1.3.2: the root an inclusion proof yields for a leaf hash.
  async function rootFromInclusion(index, size, leaf, proof) {
    if (index >= size) throw new Error("the index is outside the tree");
    let fn = index, sn = size - 1, r = leaf;
    for (const p of proof) {
      if (sn === 0) throw new Error("the proof is longer than the tree is deep");
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat([1], p, r));
        if (fn % 2 === 0) { while (fn % 2 === 0 && fn !== 0) { fn >>= 1; sn >>= 1; } }
      } else {
        r = await sha256(concat([1], r, p));
      }
      fn >>= 1; sn >>= 1;
    }
    if (sn !== 0) throw new Error("the proof is shorter than the tree is deep");
    return r;
  }

  // A C2SP signed note: text, a blank line, signature lines "— <name> <base64(keyhint ‖ sig)>".
  async function openCheckpoint(note, trust) {
    const split = note.lastIndexOf("\n\n");
    if (split < 0 || !note.endsWith("\n")) throw new Error("the checkpoint note is malformed");
    const body = note.slice(0, split + 1);
    const lines = note.slice(split + 2, -1).split("\n");
    let signedBy = null;
    for (const line of lines) {
      const match = /^— (\S+) (\S+)$/.exec(line);
      if (!match || match[1] !== trust.note_name) continue;
      const blob = fromB64(match[2]);
      for (const key of trust.keys) {
        const raw = fromB64(key.public_key);
        const hint = (await sha256(concat(encoder.encode(match[1] + "\n"), [1], raw))).slice(0, 4);
        if (!same(hint, blob.slice(0, 4))) continue;
        if (!(await ed25519Verify(raw, blob.slice(4), encoder.encode(body)))) {
          throw new Error("the checkpoint's signature does not verify");
        }
        signedBy = key.key_id;
      }
    }
    if (signedBy === null) throw new Error("the checkpoint is not signed by a key of the trust root");
    const [origin, size, root] = body.split("\n");
    return { origin, size: Number(size), root: fromB64(root), signedBy };
  }

  async function check(input, step) {
    const { record, proof, trust_root: trust } = input;
    const body = Object.fromEntries(
      Object.entries(record).filter(([k]) => k !== "hash" && k !== "signature"));
    const digest = await sha256(encoder.encode(canonical(body)));
    if (hex(digest) !== record.hash) {
      throw new Error("the record's content does not match its hash: it was changed after it was sealed");
    }
    step("The record's SHA-256 over its RFC 8785 form matches its hash " + record.hash.slice(0, 16) + "…");

    const key = trust.keys.find((k) => k.key_id === record.key_id);
    if (!key) throw new Error("the record is signed by key " + record.key_id + ", which the trust root does not hold");
    const at = Date.parse(record.recorded_at);
    if (at < Date.parse(key.not_before) || (key.not_after && at >= Date.parse(key.not_after))) {
      throw new Error("key " + key.key_id + " was not valid when the record was sealed");
    }
    const message = concat(encoder.encode(RECORD_DOMAIN), fromHex(record.hash));
    if (!(await ed25519Verify(fromB64(key.public_key), fromB64(record.signature), message))) {
      throw new Error("the record's Ed25519 signature does not verify");
    }
    step("Its Ed25519 signature by key " + key.key_id + " verifies, and the key was valid then");

    const checkpoint = await openCheckpoint(proof.checkpoint, trust);
    if (!checkpoint.origin.endsWith("/" + record.tenant)) {
      throw new Error("the checkpoint belongs to another log (" + checkpoint.origin + ")");
    }
    step("The checkpoint note (" + checkpoint.origin + ", size " + checkpoint.size +
         ") is signed by key " + checkpoint.signedBy);

    const leaf = await sha256(concat([0], encoder.encode(canonical(record))));
    const root = await rootFromInclusion(
      proof.log_index, checkpoint.size, leaf, proof.proof.map(fromB64));
    if (!same(root, checkpoint.root)) {
      throw new Error("the inclusion proof does not lead to the checkpoint's root: the record is not the one the log holds at index " + proof.log_index);
    }
    step("The inclusion proof (" + proof.proof.length + " hashes) leads from the record at index " +
         proof.log_index + " to the checkpoint's root " + hex(root).slice(0, 16) + "…");
  }

  async function main() {
    const result = document.getElementById("proof-result");
    const steps = document.getElementById("proof-steps");
    const input = JSON.parse(document.getElementById("proof-input").textContent);
    const step = (text) => {
      const item = document.createElement("li");
      item.textContent = "✓ " + text;
      steps.appendChild(item);
    };
    result.replaceChildren();
    const say = (state, text) => {
      result.dataset.state = state;
      const p = document.createElement("p");
      p.className = "status " + (state === "ok" ? "ok" : "bad");
      p.textContent = text;
      result.replaceChildren(p);
    };
    try {
      if (!window.crypto || !crypto.subtle) throw new Error("this browser offers no WebCrypto here (it needs HTTPS or localhost)");
      await check(input, step);
      say("ok", "✓ Verified in your browser: this record is in the signed log, unchanged since it was sealed.");
    } catch (error) {
      say("failed", "✗ Verification failed: " + error.message + ".");
    }
  }

  main();
})();
