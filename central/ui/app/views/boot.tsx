import type { Page } from '../api.js';
import { Loading, Problem } from '../components.js';
import { useApi } from '../hooks.js';

interface BootEnv {
  id: string;
  name: string;
  os?: { family?: string; version?: string };
  kernel?: { url?: string };
  description?: string;
  onlyUnknown?: boolean;
}
interface Image {
  name: string;
  sha256?: string;
  size?: number;
  format?: string;
  createdAt?: string;
  [k: string]: unknown;
}

const mib = (n?: number) => (n === undefined ? '' : `${(n / 1024 / 1024).toFixed(1)} MiB`);

/** Boot environments and deployable images. */
export function BootView() {
  const envs = useApi<Page<BootEnv>>('/bootenvs?limit=1000');
  const images = useApi<Page<Image> | Image[]>('/images');
  const imageItems = Array.isArray(images.data) ? images.data : (images.data?.items ?? []);
  return (
    <>
      <h1>Boot environments and images</h1>
      <section class="card" aria-labelledby="bootenvs-h">
        <h2 id="bootenvs-h">Boot environments</h2>
        <Problem error={envs.error} />
        <Loading loading={envs.loading && !envs.data} />
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">OS</th>
              <th scope="col">Kernel</th>
              <th scope="col">For</th>
            </tr>
          </thead>
          <tbody>
            {envs.data?.items.map((e) => (
              <tr key={e.id}>
                <td>{e.name}</td>
                <td>{[e.os?.family, e.os?.version].filter(Boolean).join(' ')}</td>
                <td class="mono">{e.kernel?.url ?? ''}</td>
                <td>{e.onlyUnknown ? 'unknown machines' : 'any machine'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section class="card" aria-labelledby="images-h">
        <h2 id="images-h">Images</h2>
        <Problem error={images.error} />
        {imageItems.length === 0 && images.data && <p class="muted">No images: push one with <code>underlay images push</code>.</p>}
        {imageItems.length > 0 && (
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Size</th>
                <th scope="col">SHA-256</th>
              </tr>
            </thead>
            <tbody>
              {imageItems.map((i) => (
                <tr key={i.name}>
                  <td>{i.name}</td>
                  <td>{mib(i.size)}</td>
                  <td class="mono small">{i.sha256 ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}
