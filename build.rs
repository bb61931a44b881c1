//! Compiles the built-in templates (`templates/`) into the binary: generates a table of
//! (name, contents) so a new template file needs no code change.

use std::path::Path;

fn collect(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("templates/ is readable")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, root, out);
        } else {
            let name = path
                .strip_prefix(root)
                .expect("under templates/")
                .to_string_lossy()
                .replace('\\', "/");
            out.push(name);
        }
    }
}

fn main() {
    // Read at run time: `env!` would bake in the folder the build script was first compiled in,
    // and a copied target dir (a second checkout, a git worktree) would then embed another
    // checkout's templates.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("templates");
    println!("cargo:rerun-if-changed=templates");
    let mut names = Vec::new();
    collect(&root, &root, &mut names);
    names.sort();
    let mut code = String::from(
        "/// Built-in templates: (name, contents), sorted by name.\npub const BUILTIN: &[(&str, &str)] = &[\n",
    );
    for name in &names {
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            root.join(name).to_string_lossy()
        ));
    }
    code.push_str("];\n");
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set")).join("builtin_templates.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
