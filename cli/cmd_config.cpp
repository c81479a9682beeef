// engramsim presets | config show | config help
#include <iostream>

#include "cli/commands.h"
#include "cli/text_table.h"
#include "model/config.h"
#include "model/presets.h"

namespace engramsim::cli {

namespace {

void print_declaration(const config::Key& key, const std::string& path) {
    std::cout << path << "  [" << config::describe_type(key) << "]";
    if (key.type != config::Type::Section) {
        if (key.default_value.is_null())
            std::cout << "  required";
        else
            std::cout << "  default " << key.default_value.dump();
    }
    std::cout << "\n    " << key.help << "\n";
    for (const auto& child : key.keys)
        print_declaration(child, path.empty() ? child.name : path + "." + child.name);
}

}  // namespace

void add_presets_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("presets", "List the presets shipped with the binary");
    cmd->callback([] {
        TextTable table({"<kind", "<name", "<description"});
        for (const auto& p : presets::list()) table.add({p.kind, p.name, p.description});
        table.print(std::cout);
        std::cout << "\nShow one resolved: engramsim config show NAME\n";
    });
}

void add_config_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("config", "Show resolved configs and the declared keys");
    cmd->require_subcommand(1);

    auto* show = cmd->add_subcommand(
        "show", "Print a preset or JSON file resolved: defaults filled, units normalized");
    static std::string target;
    show->add_option("PRESET_OR_FILE", target, "Preset name (see `engramsim presets`) or path")
        ->required();
    show->callback([] { std::cout << config::load(target).dump(2) << '\n'; });

    auto* help = cmd->add_subcommand("help", "Print key declarations: type, unit, default, help");
    static std::string key;
    help->add_option("KEY", key, "Dotted key path (engram.seed) or section (hardware.gpu)");
    help->callback([] {
        const config::Key* decl = config::find_key(key);
        if (!decl) {
            std::string msg = "no key '" + key + "'";
            if (auto near = config::nearest(key, config::declared_paths(true)))
                msg += "; did you mean " + *near + "?";
            throw config::ConfigError(msg);
        }
        print_declaration(*decl, key);
    });
}

}  // namespace engramsim::cli
