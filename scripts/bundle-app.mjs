// The application bundle of an offline bundle's lib/ (docs/operations.md#runtime-and-bundles),
// shared by scripts/build-dist.mjs (`make dist`) and bench/agent-footprint.ts (which measures the
// agent as a board runs it). One esbuild configuration, so the bench cannot drift from the bundle.
import * as esbuild from 'esbuild';

/**
 * Optional native parts of dependencies, never bundled. Each is loaded inside try/catch by its
 * user, which falls back to JavaScript when the require fails (as it does in the bundle):
 * - cpu-features: ssh2's optional CPU probe (node-gyp addon), used to order ciphers;
 * - *.node: compiled addons, e.g. ssh2's optional lib/protocol/crypto/build/Release/sshcrypto.node.
 * (ssh2 comes with dockerode → docker-modem, for ssh:// docker hosts; muster uses the unix socket.)
 */
export const NEVER_BUNDLED = ['cpu-features', '*.node'];

/**
 * Bundles cli/main.ts of the checkout `root` into `outdir`/muster.js plus its lazy chunks (ESM,
 * node24, minified whitespace and syntax, no legal comments).
 * @param {{ root: string, outdir: string, version: string, commit: string }} o
 * @returns {Promise<esbuild.BuildResult>} with its metafile
 */
export function bundleApp({ root, outdir, version, commit }) {
  return esbuild.build({
    stdin: {
      contents: "import { main } from './cli/main.ts';\nawait main();\n",
      resolveDir: root,
      sourcefile: 'muster-entry.ts',
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    // dockerode (and its grpc, protobufjs, ssh2) is imported on first use: a chunk beside muster.js.
    splitting: true,
    outdir,
    entryNames: 'muster',
    chunkNames: '[name]-[hash]',
    external: NEVER_BUNDLED,
    // What the CommonJS dependencies expect of their module scope: require() (for Node's built-ins
    // and the optional parts in try/catch), __filename and __dirname (ssh2 reads them at load).
    banner: {
      js: [
        "import { createRequire as __musterRequire } from 'node:module';",
        "import { fileURLToPath as __musterPath } from 'node:url';",
        'const require = __musterRequire(import.meta.url);',
        'const __filename = __musterPath(import.meta.url);',
        "const __dirname = __musterPath(new URL('.', import.meta.url));",
      ].join(' '),
    },
    define: { __MUSTER_BUILD__: JSON.stringify({ version, commit }) },
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
}
