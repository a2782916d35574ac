package main

import (
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, addCompletionCommands) }

// addCompletionCommands adds "lispctl completion SHELL", which prints the
// shell completion script cobra generates for the whole command tree. It
// replaces cobra's default completion command so that its help follows
// the conventions of the other commands (Short, Long, Example; no --json).
func addCompletionCommands(root *cobra.Command) {
	noun := nounCommand("completion",
		"Print the shell completion script for bash, zsh, fish or powershell",
		`Print a script that makes the shell complete lispctl's commands, flags and
arguments (log levels, for instance) when Tab is pressed. Load it once in the
current shell, or install it so that every new shell has it; see the command
of each shell. The script asks lispctl itself for completions, so it stays
right after lispctl is upgraded.`,
		`  source <(lispctl completion bash)
  lispctl completion bash | sudo tee /etc/bash_completion.d/lispctl >/dev/null
  lispctl completion zsh > "${fpath[1]}/_lispctl"
  lispctl completion fish > ~/.config/fish/completions/lispctl.fish`)
	var noDesc bool
	shells := []struct {
		name, long, example string
		gen                 func(cmd *cobra.Command) error
	}{
		{"bash", `Print the bash completion script. It needs the bash-completion package
(installed by default on Debian and Ubuntu).

Load it in the current shell with "source <(lispctl completion bash)"; install it
for every shell by writing it to /etc/bash_completion.d/lispctl (then open a
new shell).`,
			`  source <(lispctl completion bash)
  lispctl completion bash | sudo tee /etc/bash_completion.d/lispctl >/dev/null`,
			func(cmd *cobra.Command) error { return cmd.Root().GenBashCompletionV2(cmd.OutOrStdout(), !noDesc) }},
		{"zsh", `Print the zsh completion script.

Completion must be enabled in zsh ("autoload -U compinit; compinit" in
~/.zshrc). Load the script in the current shell with
"source <(lispctl completion zsh)"; install it for every shell by writing it to
a directory of $fpath as _lispctl (then open a new shell).`,
			`  source <(lispctl completion zsh)
  lispctl completion zsh > "${fpath[1]}/_lispctl"`,
			func(cmd *cobra.Command) error {
				if noDesc {
					return cmd.Root().GenZshCompletionNoDesc(cmd.OutOrStdout())
				}
				return cmd.Root().GenZshCompletion(cmd.OutOrStdout())
			}},
		{"fish", `Print the fish completion script.

Load it in the current shell with "lispctl completion fish | source"; install
it for every shell by writing it to ~/.config/fish/completions/lispctl.fish.`,
			`  lispctl completion fish | source
  lispctl completion fish > ~/.config/fish/completions/lispctl.fish`,
			func(cmd *cobra.Command) error { return cmd.Root().GenFishCompletion(cmd.OutOrStdout(), !noDesc) }},
		{"powershell", `Print the PowerShell completion script.

Load it in the current shell with
"lispctl completion powershell | Out-String | Invoke-Expression"; add that line
to your PowerShell profile for every shell.`,
			`  lispctl completion powershell | Out-String | Invoke-Expression`,
			func(cmd *cobra.Command) error {
				if noDesc {
					return cmd.Root().GenPowerShellCompletion(cmd.OutOrStdout())
				}
				return cmd.Root().GenPowerShellCompletionWithDesc(cmd.OutOrStdout())
			}},
	}
	for _, sh := range shells {
		gen := sh.gen
		c := &cobra.Command{
			Use:               sh.name,
			Short:             "Print the " + sh.name + " completion script",
			Long:              sh.long,
			Example:           sh.example,
			Args:              noArgs,
			ValidArgsFunction: cobra.NoFileCompletions,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if jsonOutput(cmd) {
					return usageErrorf("%s prints a shell script; --json does not apply", cmd.CommandPath())
				}
				return gen(cmd)
			},
		}
		c.Flags().BoolVar(&noDesc, "no-descriptions", false, "complete without a description of each command and flag")
		noun.AddCommand(c)
	}
	root.AddCommand(noun)
}
