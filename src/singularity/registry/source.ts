// Image names with a transport in front, as Singularity takes them wherever an image is expected:
// docker://, oras://, docker-archive:, oci-archive:, oci: (and the ones tsrt-singularity does not serve).
import * as fs from 'node:fs';

export type Transport = 'docker' | 'oras' | 'docker-archive' | 'oci-archive' | 'oci';

export interface ImageUri {
  transport: Transport;
  /** What follows the transport (`//` taken off for docker:// and oras://). */
  name: string;
}

const SERVED = /^(docker|oras):\/\/(.+)$|^(docker-archive|oci-archive|oci):(.+)$/;

const UNSERVED: [RegExp, string][] = [
  [
    /^library:\/\//,
    'library:// images need the Sylabs Cloud Library, which tsrt-singularity does not talk to (there is no library service to test against); push the image to an OCI registry and use oras:// or docker:// instead',
  ],
  [/^shub:\/\//, 'shub:// images come from Singularity Hub, which is retired and not supported; use docker:// or oras://'],
  [
    /^docker-daemon:/,
    'docker-daemon: images are read from a Docker daemon, which tsrt-singularity does not talk to; save the image with `docker save -o image.tar NAME` and use docker-archive:image.tar',
  ],
  [/^https?:\/\//, 'http(s):// image downloads are not supported; download the file and give its path, or use oras://'],
];

/** Why a source with this transport cannot be used, or undefined when it can (or is not a URI at all). */
export function unsupportedSource(spec: string): string | undefined {
  for (const [re, why] of UNSERVED) if (re.test(spec)) return `${spec}: ${why}`;
  return undefined;
}

/** The transport and name of `spec`, or undefined for a plain path (an existing file named `oci:x` stays a path). */
export function imageUri(spec: string): ImageUri | undefined {
  const m = SERVED.exec(spec);
  if (!m || fs.existsSync(spec)) return undefined;
  return m[1] ? { transport: m[1] as Transport, name: m[2]! } : { transport: m[3] as Transport, name: m[4]! };
}

/** True for anything with a transport prefix, served or not. */
export function isImageUri(spec: string): boolean {
  return imageUri(spec) !== undefined || unsupportedSource(spec) !== undefined;
}
