/**
 * The bundle a deployer installs when it is given none: built from the repository's checkout once
 * per git HEAD (a new commit builds a new one; a failed build is not cached).
 */
import { buildBundle, type BundleInfo } from '../../agent/bundle/build';
import { gitHead } from '../../core/version-info';

export class CheckoutBundle {
  private cached: { head: string | null; bundle: Promise<BundleInfo> } | null = null;

  constructor(private readonly repoDir: string, private readonly requirements: string[] | undefined) {}

  get(): Promise<BundleInfo> {
    let head: string | null = null;
    try {
      head = gitHead(this.repoDir);
    } catch { /* not a checkout: build once */ }
    if (!this.cached || (head !== null && this.cached.head !== head)) {
      const bundle = buildBundle({ repoDir: this.repoDir, requirements: this.requirements });
      bundle.catch(() => { if (this.cached?.bundle === bundle) this.cached = null; });
      this.cached = { head, bundle };
    }
    return this.cached.bundle;
  }
}
