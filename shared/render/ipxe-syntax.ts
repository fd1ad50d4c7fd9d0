/** A syntax check for iPXE scripts: shebang, known commands, `goto` targets that exist. */

/** Commands of iPXE's full build (ipxe.org/cmd), plus aliases. */
export const IPXE_COMMANDS: ReadonlySet<string> = new Set([
  'autoboot', 'boot', 'certfree', 'certstat', 'certstore', 'chain', 'choose', 'clear', 'colour', 'config',
  'console', 'cpair', 'cpuid', 'dhcp', 'digest', 'echo', 'exit', 'fcels', 'fcstat', 'form', 'goto',
  'ibstat', 'ifclose', 'ifconf', 'ifopen', 'ifstat', 'imgargs', 'imgdecrypt', 'imgexec', 'imgextract',
  'imgfetch', 'imgfree', 'imgload', 'imgmem', 'imgselect', 'imgstat', 'imgtrust', 'imgverify', 'inc',
  'initrd', 'ipstat', 'iseq', 'isset', 'item', 'kernel', 'login', 'lotest', 'md5sum', 'menu', 'module',
  'neighbour', 'nslookup', 'nstat', 'ntp', 'param', 'params', 'pciscan', 'ping', 'poweroff', 'present',
  'profstat', 'prompt', 'read', 'reboot', 'route', 'sanboot', 'sanhook', 'sanunhook', 'set', 'sha1sum',
  'shell', 'show', 'sleep', 'sync', 'time', 'vcreate', 'vdestroy',
]);

const LABEL = /^:([A-Za-z0-9_.-]+)\s*$/;

/** Returns the problems found (empty when the script looks valid). */
export function checkIpxeScript(text: string): string[] {
  const problems: string[] = [];
  const lines = text.split('\n');
  if (lines[0]?.trimEnd() !== '#!ipxe') problems.push('first line must be "#!ipxe"');
  const labels = new Set<string>();
  const gotos: Array<{ target: string; line: number }> = [];
  lines.forEach((raw, i) => {
    const n = i + 1;
    const line = raw.replace(/\r$/, '');
    if (/[\x00-\x08\x0b-\x1f\x7f]/.test(line)) problems.push(`line ${n}: control character`);
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    if (trimmed.startsWith(':')) {
      const m = LABEL.exec(trimmed);
      if (!m) problems.push(`line ${n}: bad label "${trimmed}"`);
      else labels.add(m[1]!);
      return;
    }
    // Commands chain with `&&`, `||` and a standalone `;` (a `;` inside a word is just text).
    const words = trimmed.split(/[ \t]+/);
    let expectCommand = true;
    for (let w = 0; w < words.length; w++) {
      const word = words[w]!;
      if (word === '&&' || word === '||' || word === ';') {
        if (expectCommand) problems.push(`line ${n}: "${word}" without a command before it`);
        expectCommand = true;
        continue;
      }
      if (!expectCommand) continue;
      expectCommand = false;
      if (!IPXE_COMMANDS.has(word)) problems.push(`line ${n}: unknown command "${word}"`);
      if (word === 'goto') {
        const target = words[w + 1];
        if (!target || ['&&', '||', ';'].includes(target)) problems.push(`line ${n}: goto without a label`);
        else if (!target.includes('${')) gotos.push({ target, line: n });
      }
    }
    if (expectCommand && words.length > 0) problems.push(`line ${n}: command chain ends with an operator`);
  });
  for (const g of gotos) if (!labels.has(g.target)) problems.push(`line ${g.line}: goto target ":${g.target}" does not exist`);
  return problems;
}
