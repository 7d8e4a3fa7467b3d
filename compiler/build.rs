//! Generates the DSL parser from `src/dsl/grammar.lalrpop` (into `OUT_DIR`).

fn main() {
    lalrpop::Configuration::new()
        .use_cargo_dir_conventions()
        .emit_rerun_directives(true)
        .process()
        .expect("the DSL grammar compiles");
}
