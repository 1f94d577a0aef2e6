// The image table: how a container image named in CreateModel becomes a program on this machine.
// There is no Docker engine to pull images, so each image berth can run is registered with the
// command that honours SageMaker's container contract for it.

export interface ImageCommand {
  readonly command: readonly string[];
  /**
   * The command when the model's Environment sets SAGEMAKER_PROGRAM: SageMaker's XGBoost image
   * switches from algorithm mode to framework mode (the user's inference.py) on it.
   */
  readonly programCommand?: readonly string[] | undefined;
  readonly env?: Readonly<Record<string, string>> | undefined;
}

export interface ResolvedImage extends ImageCommand {
  /** The table key that matched. */
  readonly key: string;
}

export interface ImageReference {
  readonly registry?: string | undefined;
  readonly repository: string;
  readonly tag?: string | undefined;
  readonly digest?: string | undefined;
}

/** Splits `[registry/]repository[:tag][@digest]` as Docker does. */
export function parseImage(image: string): ImageReference {
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let registry: string | undefined;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return { registry, repository: rest, tag, digest };
}

export class ImageTable {
  private readonly entries: ReadonlyMap<string, ImageCommand>;

  constructor(entries: Readonly<Record<string, ImageCommand>>) {
    this.entries = new Map(Object.entries(entries));
  }

  /**
   * Most specific first: the full image string, then `repository:tag`, then `repository` (any tag,
   * any registry — so an ECR URI in any region or account finds the same entry).
   */
  resolve(image: string): ResolvedImage | undefined {
    const ref = parseImage(image);
    const candidates = [image, ref.tag ? `${ref.repository}:${ref.tag}` : undefined, ref.repository];
    for (const key of candidates) {
      if (key === undefined) continue;
      const entry = this.entries.get(key);
      if (entry) return { key, ...entry };
    }
    return undefined;
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }
}
