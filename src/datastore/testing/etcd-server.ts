/**
 * Test helper: a real etcd (Debian `etcd-server`, reference/lab-recipes.md §5) on loopback, with
 * free ports, a temporary data dir under os.tmpdir() with a per-run prefix, optional TLS
 * (throwaway CA, server and client certificates made with openssl) and optional auth (a root
 * user plus a `calico` user whose role may read and write `/calico/` and `/conformance/`).
 *
 * `stop()` / `remove()` end the process and delete the directory; an exit hook kills and removes
 * whatever a crashed test left behind. `kill()` + `start()` restart it on the same data dir and
 * ports, for fault tests.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const ETCD_BIN = process.env.ETCD_BIN ?? "/usr/bin/etcd";
export const ETCDCTL_BIN = process.env.ETCDCTL_BIN ?? "/usr/bin/etcdctl";

/**
 * Why etcd tests must skip, or false when they must run. Outside CI a missing etcd skips with
 * this reason; under CI (`$CI` set) the tests run and fail loudly (STYLE.md, Tests).
 */
export function etcdSkipReason(
  env: NodeJS.ProcessEnv = process.env,
  bins: readonly string[] = [ETCD_BIN, ETCDCTL_BIN],
): string | false {
  if (bins.every((b) => existsSync(b))) return false;
  if (env.CI !== undefined && env.CI !== "" && env.CI !== "false") return false;
  return `etcd is not installed (${bins.join(", ")}); apt-get install etcd-server etcd-client (scripts/install.sh)`;
}

export interface EtcdServerOptions {
  /** Serve clients over TLS and require a client certificate signed by the test CA. */
  tls?: boolean;
  /** Enable auth: users `root` and `calico` (role `calico`: readwrite on /calico/ and /conformance/). */
  auth?: boolean;
}

export interface EtcdTlsFiles {
  ca: string;
  cert: string;
  key: string;
  /** A client cert signed by a different CA: the server must refuse it. */
  otherCa: string;
  otherCert: string;
  otherKey: string;
}

/** Ports handed out in this process, so two servers started back to back never collide. */
const taken = new Set<number>();

async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once("error", reject);
      srv.listen(0, "127.0.0.1", () => {
        const a = srv.address();
        const p = typeof a === "object" && a !== null ? a.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (!taken.has(port)) {
      taken.add(port);
      return port;
    }
  }
  throw new Error("no free loopback port after 50 tries");
}

const live = new Set<EtcdServer>();
let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  // Last resort when a test process dies without its after() hooks: no etcd, no temp dir left.
  process.on("exit", () => {
    for (const s of live) s.removeSync();
  });
}

export class EtcdServer {
  readonly dir: string;
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly tls: EtcdTlsFiles | undefined;
  readonly users = { root: "root-pw-calico-ts", calico: "calico-pw-calico-ts" } as const;
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  log = "";

  private constructor(
    readonly opts: EtcdServerOptions,
    dir: string,
    ports: [number, number],
    tls: EtcdTlsFiles | undefined,
  ) {
    this.dir = dir;
    this.dataDir = join(dir, "data");
    [this.clientPort, this.peerPort] = ports;
    this.tls = tls;
  }

  /** Start a fresh etcd (and set up TLS/auth when asked). Removes everything if it fails. */
  static async start(opts: EtcdServerOptions = {}): Promise<EtcdServer> {
    hookExit();
    const dir = mkdtempSync(join(tmpdir(), `calico-ts-etcd-${process.pid}-`));
    let server: EtcdServer | undefined;
    try {
      const tls = opts.tls === true ? await makeCerts(dir) : undefined;
      server = new EtcdServer(opts, dir, [await freePort(), await freePort()], tls);
      live.add(server);
      await server.launch();
      if (opts.auth === true) await server.enableAuth();
      return server;
    } catch (err) {
      if (server !== undefined) await server.remove();
      else rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  get endpoint(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  get scheme(): "http" | "https" {
    return this.tls !== undefined ? "https" : "http";
  }

  /** The datastore URL of this server (with the calico user's credentials and TLS files). */
  url(opts: { user?: string; password?: string; tls?: Partial<EtcdTlsFiles> } = {}): string {
    const auth =
      opts.user !== undefined
        ? `${encodeURIComponent(opts.user)}:${encodeURIComponent(opts.password ?? "")}@`
        : this.opts.auth === true
          ? `calico:${encodeURIComponent(this.users.calico)}@`
          : "";
    const q: string[] = [];
    const t = { ...this.tls, ...opts.tls };
    if (this.tls !== undefined) {
      if (t.ca !== undefined) q.push(`ca=${encodeURIComponent(t.ca)}`);
      if (t.cert !== undefined) q.push(`cert=${encodeURIComponent(t.cert)}`);
      if (t.key !== undefined) q.push(`key=${encodeURIComponent(t.key)}`);
    }
    const scheme = this.tls !== undefined ? "etcds" : "etcd";
    return `${scheme}://${auth}${this.endpoint}${q.length > 0 ? `?${q.join("&")}` : ""}`;
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  /** (Re)start etcd on the same data dir and ports; resolves when it serves clients. */
  async launch(timeoutMs = 20_000): Promise<void> {
    if (this.proc !== undefined) throw new Error("etcd is already running");
    const c = `${this.scheme}://${this.endpoint}`;
    const p = `http://127.0.0.1:${this.peerPort}`;
    const args = [
      "--name",
      "calico-ts-test",
      "--data-dir",
      this.dataDir,
      "--listen-client-urls",
      c,
      "--advertise-client-urls",
      c,
      "--listen-peer-urls",
      p,
      "--initial-advertise-peer-urls",
      p,
      "--initial-cluster",
      `calico-ts-test=${p}`,
      "--logger",
      "zap",
      "--log-outputs",
      "stderr",
    ];
    if (this.tls !== undefined) {
      args.push("--cert-file", join(this.dir, "server.pem"), "--key-file", join(this.dir, "server-key.pem"));
      args.push("--client-cert-auth", "--trusted-ca-file", this.tls.ca);
    }
    const child = spawn(ETCD_BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
    this.proc = child;
    this.log = "";
    let ready = false;
    const readyP = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`etcd not ready after ${timeoutMs} ms:\n${this.tail()}`)),
        timeoutMs,
      );
      child.stderr?.on("data", (d: Buffer) => {
        if (this.log.length < 200_000) this.log += d.toString();
        if (!ready && /ready to serve client requests|serving client traffic/.test(this.log)) {
          ready = true;
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        if (!ready) reject(new Error(`etcd exited (${code ?? signal}) before it was ready:\n${this.tail()}`));
      });
    });
    this.exited = new Promise<void>((resolve) => {
      child.once("exit", () => {
        if (this.proc === child) this.proc = undefined;
        resolve();
      });
      child.once("error", () => {
        if (this.proc === child) this.proc = undefined;
        resolve();
      });
    });
    try {
      await readyP;
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  private tail(): string {
    return this.log.split("\n").slice(-15).join("\n");
  }

  /** SIGKILL (a crash) and wait for the process to go. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (p === undefined) return;
    p.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM, SIGKILL after `graceMs` (etcd takes more than a second to exit on SIGTERM). */
  async stop(graceMs = 5_000): Promise<void> {
    const p = this.proc;
    if (p === undefined) return;
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  /** Kill etcd and start it again on the same data dir (a crash and restart). */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  /** The running etcd's process id (for CPU accounting in benchmarks). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Stop etcd and delete the temporary directory. Idempotent. */
  async remove(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  removeSync(): void {
    if (this.proc?.pid !== undefined) {
      try {
        process.kill(this.proc.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Run etcdctl against this server as `root` (after auth is on) with the TLS files. */
  async etcdctl(args: string[], asRoot = true): Promise<string> {
    const base = [
      `--endpoints=${this.scheme}://${this.endpoint}`,
      "--dial-timeout=5s",
      "--command-timeout=10s",
    ];
    if (this.tls !== undefined) {
      base.push(`--cacert=${this.tls.ca}`, `--cert=${this.tls.cert}`, `--key=${this.tls.key}`);
    }
    if (asRoot && this.authOn) base.push(`--user=root:${this.users.root}`);
    const { stdout } = await run(ETCDCTL_BIN, [...base, ...args], {
      env: { ...process.env, ETCDCTL_API: "3" },
      timeout: 20_000,
    });
    return stdout;
  }

  private authOn = false;

  private async enableAuth(): Promise<void> {
    await this.etcdctl(["user", "add", `root:${this.users.root}`]);
    await this.etcdctl(["role", "add", "calico"]);
    for (const prefix of ["/calico/", "/conformance/"]) {
      await this.etcdctl(["role", "grant-permission", "calico", "--prefix=true", "readwrite", prefix]);
    }
    await this.etcdctl(["user", "add", `calico:${this.users.calico}`]);
    await this.etcdctl(["user", "grant-role", "calico", "calico"]);
    await this.etcdctl(["auth", "enable"]);
    this.authOn = true;
  }
}

/** A throwaway CA, a server cert for 127.0.0.1 and a client cert, plus a second CA's client cert. */
async function makeCerts(dir: string): Promise<EtcdTlsFiles> {
  const ssl = (args: string[]) => run("openssl", args, { cwd: dir, timeout: 20_000 });
  const ca = async (name: string) => {
    await ssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}-key.pem`]);
    await ssl([
      "req",
      "-x509",
      "-new",
      "-key",
      `${name}-key.pem`,
      "-subj",
      `/CN=calico-ts test ${name}`,
      "-days",
      "2",
      "-out",
      `${name}.pem`,
    ]);
  };
  const leaf = async (name: string, caName: string, cn: string, ext: string) => {
    await ssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}-key.pem`]);
    await ssl(["req", "-new", "-key", `${name}-key.pem`, "-subj", `/CN=${cn}`, "-out", `${name}.csr`]);
    writeFileSync(join(dir, `${name}.ext`), ext);
    await ssl([
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${caName}.pem`,
      "-CAkey",
      `${caName}-key.pem`,
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.pem`,
    ]);
  };
  await ca("ca");
  await ca("other-ca");
  await leaf(
    "server",
    "ca",
    "127.0.0.1",
    "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
  );
  await leaf("client", "ca", "calico-client", "extendedKeyUsage=clientAuth\n");
  await leaf("other-client", "other-ca", "calico-client", "extendedKeyUsage=clientAuth\n");
  return {
    ca: join(dir, "ca.pem"),
    cert: join(dir, "client.pem"),
    key: join(dir, "client-key.pem"),
    otherCa: join(dir, "other-ca.pem"),
    otherCert: join(dir, "other-client.pem"),
    otherKey: join(dir, "other-client-key.pem"),
  };
}
