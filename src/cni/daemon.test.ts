import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CniWireError, daemonSocketPath, encodeRequest, parseRequest, WIRE_MAGIC } from "./daemon.js";

const NUL = "\0";

describe("CNI daemon wire format", () => {
  it("round-trips a request, values with '=' and newlines included", () => {
    const req = {
      plugin: "calico" as const,
      env: { CNI_COMMAND: "ADD", CNI_ARGS: "K8S_POD_NAME=a;IgnoreUnknown=1", ODD: "line1\nline2" },
      stdin: '{"cniVersion":"1.1.0","name":"n"}\n',
    };
    assert.deepEqual(parseRequest(encodeRequest(req)), req);
  });

  it("parses what the shell script sends (env -0 then an empty entry, then the config)", () => {
    const wire = Buffer.from(
      `${WIRE_MAGIC}${NUL}calico-ipam${NUL}CNI_COMMAND=DEL${NUL}PATH=/bin${NUL}${NUL}{}`,
    );
    assert.deepEqual(parseRequest(wire), {
      plugin: "calico-ipam",
      env: { CNI_COMMAND: "DEL", PATH: "/bin" },
      stdin: "{}",
    });
    // An empty environment and an empty config.
    assert.deepEqual(parseRequest(Buffer.from(`${WIRE_MAGIC}${NUL}calico${NUL}${NUL}`)), {
      plugin: "calico",
      env: {},
      stdin: "",
    });
  });

  const bad: [string, string, RegExp][] = [
    ["empty", "", /empty request/],
    ["a line of text", "GET / HTTP/1.1\r\n", /starts with "GET \/ HTTP\/1.1\\r\\n", not/],
    [
      "another protocol",
      `HTTP/1.1${NUL}calico${NUL}${NUL}`,
      /starts with "HTTP\/1.1", not "calico-ts-cni\/1"/,
    ],
    ["unknown plugin", `${WIRE_MAGIC}${NUL}bridge${NUL}${NUL}`, /unknown plugin "bridge"/],
    ["no plugin terminator", `${WIRE_MAGIC}${NUL}calico`, /ends inside the plugin name/],
    [
      "environment cut short",
      `${WIRE_MAGIC}${NUL}calico${NUL}CNI_COMMAND=ADD${NUL}X=1`,
      /ends inside the environment \(entry 1\)/,
    ],
    ["entry without NAME=", `${WIRE_MAGIC}${NUL}calico${NUL}=x${NUL}${NUL}`, /entry 0 "=x" has no NAME=/],
  ];
  for (const [what, wire, msg] of bad) {
    it(`refuses ${what} with a message naming it`, () => {
      assert.throws(
        () => parseRequest(Buffer.from(wire)),
        (e: unknown) => e instanceof CniWireError && msg.test(e.message),
      );
    });
  }

  it("names the socket after the namespace inode", () => {
    assert.equal(daemonSocketPath(4026531840, "/run/x"), "/run/x/net-4026531840.sock");
  });
});
