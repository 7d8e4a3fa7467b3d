//! A real editor against `nwf lsp`: Neovim (headless, its built-in LSP client) opens a filter
//! with an error; the test checks that the diagnostic appears, that go-to-definition on a
//! filterref lands in the file that defines the filter, and that with a binding configured the
//! hover on a rule there gives its place in the instantiated program.
//!
//! Skips with a message when `nvim` is not installed, except under `CI=true`, where that is a
//! failure (`scripts/libvirt-up` installs Debian's `neovim`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Lua driver. Written for Neovim 0.7 (Debian 12) and later: `vim.lsp.start_client` and
/// `buf_attach_client` exist in every version with a built-in client.
const DRIVER: &str = r#"
local bin, root, out = os.getenv('NWF_BIN'), os.getenv('NWF_ROOT'), os.getenv('NWF_OUT')
local lines = {}
local function put(s) table.insert(lines, s) end
local function finish()
  vim.fn.writefile(lines, out)
  vim.cmd('qa!')
end
vim.cmd('edit ' .. root .. '/web.xml')
local buf = vim.api.nvim_get_current_buf()
local id = vim.lsp.start_client({
  name = 'nwf',
  cmd = { bin, 'lsp' },
  root_dir = root,
  workspace_folders = { { uri = vim.uri_from_fname(root), name = 'ws' } },
  init_options = { binding = root .. '/portal-binding.xml' },
})
if not id then put('error: client did not start'); finish() end
vim.lsp.buf_attach_client(buf, id)
local ok = vim.wait(30000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
if not ok then put('error: no diagnostics'); finish() end
for _, d in ipairs(vim.diagnostic.get(buf)) do
  put(string.format('diagnostic %d:%d %s %s', d.lnum + 1, d.col + 1, tostring(d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)), (d.message:gsub('\n.*', ''))))
end
-- Cursor on the filterref target `base-rules` (line 3), then go to its definition.
vim.api.nvim_win_set_cursor(0, { 3, 24 })
vim.lsp.buf.definition()
ok = vim.wait(30000, function() return vim.api.nvim_get_current_buf() ~= buf end, 50)
if not ok then put('error: definition did not jump'); finish() end
local pos = vim.api.nvim_win_get_cursor(0)
put(string.format('definition %s:%d:%d', vim.fn.fnamemodify(vim.api.nvim_buf_get_name(0), ':t'), pos[1], pos[2] + 1))
-- Hover on the rule of base-rules.xml (line 4): its place in the binding's program.
vim.lsp.buf_attach_client(0, id)
vim.api.nvim_win_set_cursor(0, { 4, 3 })
local res = vim.lsp.buf_request_sync(0, 'textDocument/hover', vim.lsp.util.make_position_params(), 30000)
local md = ''
for _, r in pairs(res or {}) do
  if r.result and r.result.contents then md = r.result.contents.value or '' end
end
for l in md:gmatch('[^\n]+') do
  if l:match('^%- ') then put('hover ' .. l) end
end
finish()
"#;

fn nvim_available() -> bool {
    Command::new("nvim")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn neovim_shows_diagnostics_and_jumps_to_definition() {
    if !nvim_available() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "nvim is not installed (scripts/libvirt-up installs it); required under CI=true"
            );
        }
        eprintln!("skipped: nvim is not installed (apt-get install neovim)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("nwf-nvim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/lsp/ws");
    for f in [
        "web.xml",
        "base-rules.xml",
        "portal.xml",
        "portal-binding.xml",
    ] {
        std::fs::copy(fixtures.join(f), dir.join(f)).expect("copy fixture");
    }
    let driver = dir.join("driver.lua");
    std::fs::write(&driver, DRIVER).expect("write driver");
    let out = dir.join("result.txt");
    let mut child = Command::new("nvim")
        .args(["--headless", "--clean", "-n", "-c"])
        .arg(format!("luafile {}", driver.display()))
        .env("NWF_BIN", env!("CARGO_BIN_EXE_nwf"))
        .env("NWF_ROOT", &dir)
        .env("NWF_OUT", &out)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nvim");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait nvim").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nvim did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let result = std::fs::read_to_string(&out).expect("nvim wrote its result");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!result.contains("error:"), "{result}");
    assert!(
        result.contains("diagnostic 7:28 W0104 unknown attribute `srcipadr` on <tcp>"),
        "{result}"
    );
    assert!(
        result.contains("diagnostic 15:22 E0201 unknown filter `clean-trafic`"),
        "{result}"
    );
    assert!(
        result.contains("definition base-rules.xml:2:15"),
        "{result}"
    );
    // With the binding configured, the hover gives the rule's place in the whole program.
    assert!(
        result.contains("hover - ethernet layer, from the VM, root chain: entry 9 of 10"),
        "{result}"
    );
}
