
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'knockr' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'knockr'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'knockr' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Knock PORT[:tcp|udp] or SIZE:icmp (repeatable, or a comma list); targets become hosts')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Knock PORT[:tcp|udp] or SIZE:icmp (repeatable, or a comma list); targets become hosts')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Pause between knocks on one host, 0s to 1m, e.g. 200ms or 1s (bare number: ms) [default: 200ms]')
            [CompletionResult]::new('--delay', '--delay', [CompletionResultType]::ParameterName, 'Pause between knocks on one host, 0s to 1m, e.g. 200ms or 1s (bare number: ms) [default: 200ms]')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'How long to wait for an answer to each knock, 0s to 1m [default: 200ms]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for an answer to each knock, 0s to 1m [default: 200ms]')
            [CompletionResult]::new('--resolve-timeout', '--resolve-timeout', [CompletionResultType]::ParameterName, 'How long DNS may take for the host names, from the start of the run, 1ms to 1m (names in /etc/hosts never wait) [default: the profiles'' resolve_timeout, else 5s]')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Protocol for ports given without one')
            [CompletionResult]::new('--network', '--network', [CompletionResultType]::ParameterName, 'Protocol for ports given without one')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'How TCP knocks are sent: a bare SYN, or a full connect (for networks whose proxies swallow bare SYNs) [default: syn]')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Send the knocks and the check from this address of this machine (multi-homed machines, VPNs)')
            [CompletionResult]::new('--interface', '--interface', [CompletionResultType]::ParameterName, 'Send the knocks and the check through this interface of this machine (SO_BINDTODEVICE)')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'When the check finds the port closed, knock again, up to N (at most 10) more times (waiting 1s, 2s, 4s, ... up to 8s between rounds)')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'After the last knock, check that this TCP port accepts connections')
            [CompletionResult]::new('--every', '--every', [CompletionResultType]::ParameterName, 'Knock again every DURATION (1s to 24h) until stopped (SIGINT/SIGTERM stop it at once, even mid-round), and at once when this machine''s source address towards the targets changes')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in the summary: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'Ports given without a protocol are UDP (the C knock''s -u; as -n udp)')
            [CompletionResult]::new('--udp', '--udp', [CompletionResultType]::ParameterName, 'Ports given without a protocol are UDP (the C knock''s -u; as -n udp)')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Use IPv4 addresses only')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'Use IPv4 addresses only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Use IPv6 addresses only')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'Use IPv6 addresses only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print each knock as it is sent, on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print each knock as it is sent, on stderr')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Resolve and show what would be sent, but send nothing (and connect nothing)')
            [CompletionResult]::new('--all-addresses', '--all-addresses', [CompletionResultType]::ParameterName, 'Knock every address of each host, not only the one ssh would use')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing but errors; the exit status tells the result (-s as the Go knockr''s silent flag)')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Print nothing but errors; the exit status tells the result (-s as the Go knockr''s silent flag)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing but errors; the exit status tells the result (-s as the Go knockr''s silent flag)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the results as one JSON document on stdout')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Knock a profile (or with -p a host), wait until PORT answers, then relay stdin/stdout to it (for ssh: ProxyCommand knockr connect %n)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the profiles in the profiles file, one a line')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page knockr(1) (roff), or write every page into a directory')
            [CompletionResult]::new('knockd', 'knockd', [CompletionResultType]::ParameterValue, 'Run the knock server: watch traffic, match knock sequences, run commands')
            [CompletionResult]::new('secret', 'secret', [CompletionResultType]::ParameterValue, 'Shared secrets for time-based knock sequences (docs/otp-sequences.md)')
            [CompletionResult]::new('routeros', 'routeros', [CompletionResultType]::ParameterValue, 'MikroTik RouterOS helpers')
            [CompletionResult]::new('nft', 'nft', [CompletionResultType]::ParameterValue, 'Linux nftables helpers')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'knockr;connect' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Knock PORT[:tcp|udp] or SIZE:icmp (repeatable, or a comma list); targets become hosts')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Knock PORT[:tcp|udp] or SIZE:icmp (repeatable, or a comma list); targets become hosts')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Pause between knocks on one host, 0s to 1m, e.g. 200ms or 1s (bare number: ms) [default: 200ms]')
            [CompletionResult]::new('--delay', '--delay', [CompletionResultType]::ParameterName, 'Pause between knocks on one host, 0s to 1m, e.g. 200ms or 1s (bare number: ms) [default: 200ms]')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'How long to wait for an answer to each knock, 0s to 1m [default: 200ms]')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for an answer to each knock, 0s to 1m [default: 200ms]')
            [CompletionResult]::new('--resolve-timeout', '--resolve-timeout', [CompletionResultType]::ParameterName, 'How long DNS may take for the host names, from the start of the run, 1ms to 1m (names in /etc/hosts never wait) [default: the profiles'' resolve_timeout, else 5s]')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Protocol for ports given without one')
            [CompletionResult]::new('--network', '--network', [CompletionResultType]::ParameterName, 'Protocol for ports given without one')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'How TCP knocks are sent: a bare SYN, or a full connect (for networks whose proxies swallow bare SYNs) [default: syn]')
            [CompletionResult]::new('--source', '--source', [CompletionResultType]::ParameterName, 'Send the knocks and the check from this address of this machine (multi-homed machines, VPNs)')
            [CompletionResult]::new('--interface', '--interface', [CompletionResultType]::ParameterName, 'Send the knocks and the check through this interface of this machine (SO_BINDTODEVICE)')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'When the check finds the port closed, knock again, up to N (at most 10) more times (waiting 1s, 2s, 4s, ... up to 8s between rounds)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'Ports given without a protocol are UDP (the C knock''s -u; as -n udp)')
            [CompletionResult]::new('--udp', '--udp', [CompletionResultType]::ParameterName, 'Ports given without a protocol are UDP (the C knock''s -u; as -n udp)')
            [CompletionResult]::new('-4', '-4', [CompletionResultType]::ParameterName, 'Use IPv4 addresses only')
            [CompletionResult]::new('--ipv4', '--ipv4', [CompletionResultType]::ParameterName, 'Use IPv4 addresses only')
            [CompletionResult]::new('-6', '-6', [CompletionResultType]::ParameterName, 'Use IPv6 addresses only')
            [CompletionResult]::new('--ipv6', '--ipv6', [CompletionResultType]::ParameterName, 'Use IPv6 addresses only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print each knock as it is sent, on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print each knock as it is sent, on stderr')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Resolve and show what would be sent, but send nothing (and connect nothing)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'knockr;list' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'knockr;completions' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'knockr;man' {
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Write every page into DIR: knockr(1), one per subcommand, and the files'' knockr-profiles(5) and knockr-knockd.toml(5)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'knockr;knockd' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Server configuration: a knockr TOML file or a classic knockd.conf (told apart by content)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Server configuration: a knockr TOML file or a classic knockd.conf (told apart by content)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Capture on this interface ("any": all of them); repeatable; replaces the config''s')
            [CompletionResult]::new('--interface', '--interface', [CompletionResultType]::ParameterName, 'Capture on this interface ("any": all of them); repeatable; replaces the config''s')
            [CompletionResult]::new('--state-file', '--state-file', [CompletionResultType]::ParameterName, 'Keep open knockers and used time-based sequences in this file; replaces the config''s state_file (--read and --dry-run use none)')
            [CompletionResult]::new('--convert', '--convert', [CompletionResultType]::ParameterName, 'Print a classic knockd.conf as knockr''s TOML (the same doors, commands and timeouts, with comments on what TOML adds), and exit')
            [CompletionResult]::new('--read', '--read', [CompletionResultType]::ParameterName, 'Replay a capture file (pcap) instead of capturing live; its timestamps are the clock')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Validate the configuration as a start would (files, state file, kernel filter), print the doors and warnings, and exit: 0 only if it would start')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print the commands instead of running them (one-time sequence files are not changed)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Log one JSON object per line instead of knockd-style lines; with --check, print the configuration as one JSON document')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Also log debug lines')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Also log debug lines')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'knockr;secret' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Print a fresh random 160-bit secret, in base32 and in hex (the same bytes)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'knockr;secret;new' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'knockr;secret;help' {
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Print a fresh random 160-bit secret, in base32 and in hex (the same bytes)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'knockr;secret;help;new' {
            break
        }
        'knockr;secret;help;help' {
            break
        }
        'knockr;routeros' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('rules', 'rules', [CompletionResultType]::ParameterValue, 'Print a RouterOS script that makes the router detect a knock sequence by itself (staged address lists), opening ports to whoever completes it')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check that knockd can use each router of each [door.routeros]: reachable, its certificate, credentials, and the list readable and writable (exit 0 when every router is ready, 1 otherwise)')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Install the rules of `routeros rules` on one or more routers over the REST API, or take them out with --remove; a second run changes nothing (exit 0 when every router ends as wanted, 1 if one failed, 2 on a usage error)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'knockr;routeros;rules' {
            [CompletionResult]::new('--sequence', '--sequence', [CompletionResultType]::ParameterName, 'The sequence instead of a profile: PORT[:tcp|udp] or SIZE:icmp, repeatable or a comma list')
            [CompletionResult]::new('--wan', '--wan', [CompletionResultType]::ParameterName, 'Interface list the knocks arrive on')
            [CompletionResult]::new('--protect', '--protect', [CompletionResultType]::ParameterName, 'Ports to open to a knocker: PORT[-PORT][:tcp|udp] (tcp unless told), e.g. 22,8291,51820:udp,60000-60010')
            [CompletionResult]::new('--list', '--list', [CompletionResultType]::ParameterName, 'Address list a knocker lands on')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long a knocker stays on the list (the router removes it itself)')
            [CompletionResult]::new('--stage-timeout', '--stage-timeout', [CompletionResultType]::ParameterName, 'Time allowed between two knocks [default: 10s, or 4x the profile''s delay if longer]')
            [CompletionResult]::new('--block-for', '--block-for', [CompletionResultType]::ParameterName, 'How long a source that began the sequence and then sent anything else (a scan) is blocked from knocking')
            [CompletionResult]::new('--place-before', '--place-before', [CompletionResultType]::ParameterName, 'Comment of the input rule the accept goes before [default: the default configuration''s drop rule if there is one, else the top of the input chain]')
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'Tag of the chain, lists and comments, by which importing again (or apply) replaces the rules and --undo (or apply --remove) finds them; one per knock door on a router [default: knockr-PROFILE, or knockr]')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Tag of the chain, lists and comments, by which importing again (or apply) replaces the rules and --undo (or apply --remove) finds them; one per knock door on a router [default: knockr-PROFILE, or knockr]')
            [CompletionResult]::new('--family', '--family', [CompletionResultType]::ParameterName, 'Rules under /ip (ipv4), /ipv6 (ipv6), or both (any): knockers of either family')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--allow-weak', '--allow-weak', [CompletionResultType]::ParameterName, 'Generate a sequence a port scan completes easily (one knock, or one protocol in ascending or descending order), with a warning, instead of refusing it')
            [CompletionResult]::new('--undo', '--undo', [CompletionResultType]::ParameterName, 'Print the script that removes the rules and lists of this tag instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'knockr;routeros;check' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'The knockd configuration whose [door.routeros] tables to check')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The knockd configuration whose [door.routeros] tables to check')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'knockr;routeros;apply' {
            [CompletionResult]::new('--sequence', '--sequence', [CompletionResultType]::ParameterName, 'The sequence instead of a profile: PORT[:tcp|udp] or SIZE:icmp, repeatable or a comma list')
            [CompletionResult]::new('--wan', '--wan', [CompletionResultType]::ParameterName, 'Interface list the knocks arrive on')
            [CompletionResult]::new('--protect', '--protect', [CompletionResultType]::ParameterName, 'Ports to open to a knocker: PORT[-PORT][:tcp|udp] (tcp unless told), e.g. 22,8291,51820:udp,60000-60010')
            [CompletionResult]::new('--list', '--list', [CompletionResultType]::ParameterName, 'Address list a knocker lands on')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long a knocker stays on the list (the router removes it itself)')
            [CompletionResult]::new('--stage-timeout', '--stage-timeout', [CompletionResultType]::ParameterName, 'Time allowed between two knocks [default: 10s, or 4x the profile''s delay if longer]')
            [CompletionResult]::new('--block-for', '--block-for', [CompletionResultType]::ParameterName, 'How long a source that began the sequence and then sent anything else (a scan) is blocked from knocking')
            [CompletionResult]::new('--place-before', '--place-before', [CompletionResultType]::ParameterName, 'Comment of the input rule the accept goes before [default: the default configuration''s drop rule if there is one, else the top of the input chain]')
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'Tag of the chain, lists and comments, by which importing again (or apply) replaces the rules and --undo (or apply --remove) finds them; one per knock door on a router [default: knockr-PROFILE, or knockr]')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Tag of the chain, lists and comments, by which importing again (or apply) replaces the rules and --undo (or apply --remove) finds them; one per knock door on a router [default: knockr-PROFILE, or knockr]')
            [CompletionResult]::new('--family', '--family', [CompletionResultType]::ParameterName, 'Rules under /ip (ipv4), /ipv6 (ipv6), or both (any): knockers of either family')
            [CompletionResult]::new('--door', '--door', [CompletionResultType]::ParameterName, 'The door of -c''s knockd configuration whose [door.routeros] names the routers, the user, the password and the certificate check')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'The knockd configuration that --door names a door of')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'The knockd configuration that --door names a door of')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'A router, as http(s)://HOST[:PORT] (repeatable)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The RouterOS user (its group needs read,write,api,rest-api)')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'File whose first line is the password (mode 600, yours or root''s)')
            [CompletionResult]::new('--password-env', '--password-env', [CompletionResultType]::ParameterName, 'Environment variable holding the password')
            [CompletionResult]::new('--ca-file', '--ca-file', [CompletionResultType]::ParameterName, 'Trust only this CA (PEM) for the routers'' certificates')
            [CompletionResult]::new('--fingerprint', '--fingerprint', [CompletionResultType]::ParameterName, 'Trust the certificate with this SHA-256 fingerprint (`routeros check` shows it)')
            [CompletionResult]::new('--retry', '--retry', [CompletionResultType]::ParameterName, 'How long each request to a router is retried while it fails (5xx, unreachable)')
            [CompletionResult]::new('--profiles', '--profiles', [CompletionResultType]::ParameterName, 'Profiles file for PROFILE [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--allow-weak', '--allow-weak', [CompletionResultType]::ParameterName, 'Generate a sequence a port scan completes easily (one knock, or one protocol in ascending or descending order), with a warning, instead of refusing it')
            [CompletionResult]::new('--remove', '--remove', [CompletionResultType]::ParameterName, 'Take out every rule and stage list entry of the tag instead')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print what would change on each router, change nothing')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not check the certificate at all (anyone on the path can take the password)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'knockr;routeros;help' {
            [CompletionResult]::new('rules', 'rules', [CompletionResultType]::ParameterValue, 'Print a RouterOS script that makes the router detect a knock sequence by itself (staged address lists), opening ports to whoever completes it')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check that knockd can use each router of each [door.routeros]: reachable, its certificate, credentials, and the list readable and writable (exit 0 when every router is ready, 1 otherwise)')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Install the rules of `routeros rules` on one or more routers over the REST API, or take them out with --remove; a second run changes nothing (exit 0 when every router ends as wanted, 1 if one failed, 2 on a usage error)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'knockr;routeros;help;rules' {
            break
        }
        'knockr;routeros;help;check' {
            break
        }
        'knockr;routeros;help;apply' {
            break
        }
        'knockr;routeros;help;help' {
            break
        }
        'knockr;nft' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Profiles file [default: ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('rules', 'rules', [CompletionResultType]::ParameterValue, 'Print an nftables ruleset (table inet knockr) that makes the kernel detect a knock sequence by itself (timed sets), opening ports to whoever completes it; load it with nft -f (again to replace it)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'knockr;nft;rules' {
            [CompletionResult]::new('--sequence', '--sequence', [CompletionResultType]::ParameterName, 'The sequence instead of a profile: PORT[:tcp|udp] or SIZE:icmp, repeatable or a comma list')
            [CompletionResult]::new('--protect', '--protect', [CompletionResultType]::ParameterName, 'Ports to open to a knocker: PORT[-PORT][:tcp|udp] (tcp unless told), e.g. 22,51820:udp,60000-60010')
            [CompletionResult]::new('--interface', '--interface', [CompletionResultType]::ParameterName, 'Only knocks arriving on this interface count [default: any interface]')
            [CompletionResult]::new('--table', '--table', [CompletionResultType]::ParameterName, 'Name of the table (table inet NAME), which loading again replaces')
            [CompletionResult]::new('--set', '--set', [CompletionResultType]::ParameterName, 'Base name of the sets a knocker lands in (NAME_v4 and NAME_v6)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long a knocker stays in the set (the kernel removes it itself)')
            [CompletionResult]::new('--stage-timeout', '--stage-timeout', [CompletionResultType]::ParameterName, 'Time allowed between two knocks [default: 10s, or 4x the profile''s delay if longer]')
            [CompletionResult]::new('--block-for', '--block-for', [CompletionResultType]::ParameterName, 'How long a source that began the sequence and then sent anything else (a scan) is blocked from knocking')
            [CompletionResult]::new('--family', '--family', [CompletionResultType]::ParameterName, 'Sets and rules for ipv4, ipv6, or both (any)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Profiles file [default: $KNOCKR_CONFIG, else ~/.config/knockr/profiles.toml]')
            [CompletionResult]::new('--allow-weak', '--allow-weak', [CompletionResultType]::ParameterName, 'Generate a sequence a port scan completes easily (one knock, or one protocol in ascending or descending order), with a warning, instead of refusing it')
            [CompletionResult]::new('--for-knockd', '--for-knockd', [CompletionResultType]::ParameterName, 'Print only what a [door.nftables] door needs: the table, its two sets, and the input chain that opens the --protect ports to the addresses in them (knockd detects the knock, so no sequence is needed)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'knockr;nft;help' {
            [CompletionResult]::new('rules', 'rules', [CompletionResultType]::ParameterValue, 'Print an nftables ruleset (table inet knockr) that makes the kernel detect a knock sequence by itself (timed sets), opening ports to whoever completes it; load it with nft -f (again to replace it)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'knockr;nft;help;rules' {
            break
        }
        'knockr;nft;help;help' {
            break
        }
        'knockr;help' {
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Knock a profile (or with -p a host), wait until PORT answers, then relay stdin/stdout to it (for ssh: ProxyCommand knockr connect %n)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the profiles in the profiles file, one a line')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page knockr(1) (roff), or write every page into a directory')
            [CompletionResult]::new('knockd', 'knockd', [CompletionResultType]::ParameterValue, 'Run the knock server: watch traffic, match knock sequences, run commands')
            [CompletionResult]::new('secret', 'secret', [CompletionResultType]::ParameterValue, 'Shared secrets for time-based knock sequences (docs/otp-sequences.md)')
            [CompletionResult]::new('routeros', 'routeros', [CompletionResultType]::ParameterValue, 'MikroTik RouterOS helpers')
            [CompletionResult]::new('nft', 'nft', [CompletionResultType]::ParameterValue, 'Linux nftables helpers')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'knockr;help;connect' {
            break
        }
        'knockr;help;list' {
            break
        }
        'knockr;help;completions' {
            break
        }
        'knockr;help;man' {
            break
        }
        'knockr;help;knockd' {
            break
        }
        'knockr;help;secret' {
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Print a fresh random 160-bit secret, in base32 and in hex (the same bytes)')
            break
        }
        'knockr;help;secret;new' {
            break
        }
        'knockr;help;routeros' {
            [CompletionResult]::new('rules', 'rules', [CompletionResultType]::ParameterValue, 'Print a RouterOS script that makes the router detect a knock sequence by itself (staged address lists), opening ports to whoever completes it')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check that knockd can use each router of each [door.routeros]: reachable, its certificate, credentials, and the list readable and writable (exit 0 when every router is ready, 1 otherwise)')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Install the rules of `routeros rules` on one or more routers over the REST API, or take them out with --remove; a second run changes nothing (exit 0 when every router ends as wanted, 1 if one failed, 2 on a usage error)')
            break
        }
        'knockr;help;routeros;rules' {
            break
        }
        'knockr;help;routeros;check' {
            break
        }
        'knockr;help;routeros;apply' {
            break
        }
        'knockr;help;nft' {
            [CompletionResult]::new('rules', 'rules', [CompletionResultType]::ParameterValue, 'Print an nftables ruleset (table inet knockr) that makes the kernel detect a knock sequence by itself (timed sets), opening ports to whoever completes it; load it with nft -f (again to replace it)')
            break
        }
        'knockr;help;nft;rules' {
            break
        }
        'knockr;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
