// A throwaway certificate authority for a local control plane: the API server's
// serving certificate, client certificates for identities (CN = user, O = groups)
// and the service-account signing key. Made with the openssl command line.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Identity {
  user: string;
  groups: string[];
  certFile: string;
  keyFile: string;
}

export class CertificateAuthority {
  readonly certFile: string;
  readonly keyFile: string;

  private constructor(readonly dir: string) {
    this.certFile = join(dir, "ca.crt");
    this.keyFile = join(dir, "ca.key");
  }

  static create(dir: string, name = "covenant-test-ca"): CertificateAuthority {
    const ca = new CertificateAuthority(dir);
    openssl(
      "req",
      "-x509",
      ...ecKey(ca.keyFile),
      "-out",
      ca.certFile,
      "-days",
      "3650",
      "-subj",
      `/CN=${name}`,
    );
    return ca;
  }

  get certPem(): string {
    return readFileSync(this.certFile, "utf8");
  }

  /** A serving certificate for the given loopback addresses and names. */
  serving(name: string, ips: string[], dnsNames: string[]): { certFile: string; keyFile: string } {
    const san = [...ips.map((ip) => `IP:${ip}`), ...dnsNames.map((d) => `DNS:${d}`)].join(",");
    return this.#issue(name, `/CN=${name}`, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  }

  /**
   * A certificate for a server that also dials its peers with it (NATS cluster routes with
   * mutual TLS): serverAuth for the connections it accepts, clientAuth for those it opens.
   */
  peer(name: string, ips: string[], dnsNames: string[]): { certFile: string; keyFile: string } {
    const san = [...ips.map((ip) => `IP:${ip}`), ...dnsNames.map((d) => `DNS:${d}`)].join(",");
    return this.#issue(
      name,
      `/CN=${name}`,
      `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`,
    );
  }

  /** A client certificate: the API server reads the user from CN and the groups from O. */
  client(user: string, groups: string[] = []): Identity {
    const subject = [...groups.map((g) => `/O=${g}`), `/CN=${user}`].join("");
    const file = `client-${user.replace(/[^A-Za-z0-9_.-]/g, "_")}`;
    return { user, groups, ...this.#issue(file, subject, "extendedKeyUsage=clientAuth\n") };
  }

  #issue(file: string, subject: string, extensions: string): { certFile: string; keyFile: string } {
    const keyFile = join(this.dir, `${file}.key`);
    const csrFile = join(this.dir, `${file}.csr`);
    const certFile = join(this.dir, `${file}.crt`);
    const extFile = join(this.dir, `${file}.ext`);
    writeFileSync(extFile, extensions);
    openssl("req", "-new", ...ecKey(keyFile), "-out", csrFile, "-subj", subject);
    openssl(
      "x509",
      "-req",
      "-in",
      csrFile,
      "-CA",
      this.certFile,
      "-CAkey",
      this.keyFile,
      "-CAcreateserial",
      "-out",
      certFile,
      "-days",
      "365",
      "-extfile",
      extFile,
    );
    return { certFile, keyFile };
  }
}

/** An RSA key pair for signing service-account tokens. */
export function serviceAccountKeys(dir: string): { privateKeyFile: string; publicKeyFile: string } {
  const privateKeyFile = join(dir, "sa.key");
  const publicKeyFile = join(dir, "sa.pub");
  openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", privateKeyFile);
  openssl("pkey", "-in", privateKeyFile, "-pubout", "-out", publicKeyFile);
  return { privateKeyFile, publicKeyFile };
}

function ecKey(keyFile: string): string[] {
  return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile];
}

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}
