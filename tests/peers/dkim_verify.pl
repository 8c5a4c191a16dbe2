#!/usr/bin/perl
# Verifies the DKIM signatures of a message with Mail::DKIM (Debian's libmail-dkim-perl), a
# second verifier that is not ours (beside dkimpy in dkim_verify.py).
#
# Usage: dkim_verify.pl DNS_IP:PORT < message
#
# The public keys are looked up at the given DNS server (the test's dnsmasq) through
# Mail::DKIM::DNS's resolver hook, not the system resolver. Line ends are made CRLF first
# (smtp-sink writes the mails it takes with LF). Prints one line per DKIM-Signature:
# `pass d=.. s=.. a=..`, `unsupported d=.. s=.. a=..: detail` for an algorithm this
# Mail::DKIM does not know (Debian 12's 1.20230212 has no ed25519-sha256), or
# `fail d=.. s=.. a=..: detail`. Exits 0 when there is at least one signature and every one
# passes or is unsupported, 1 when one fails, 2 when the message has none.
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS;

my ($host, $port) = ($ARGV[0] // '') =~ /^(.*):(\d+)$/
    or die "usage: dkim_verify.pl DNS_IP:PORT < message\n";
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => [$host],
    port        => $port,
    recurse     => 1,
    udp_timeout => 5,
    tcp_timeout => 5,
    retry       => 2,
));

binmode STDIN;
my $data = do { local $/; <STDIN> };
$data =~ s/(?<!\r)\n/\r\n/g;

my $v = Mail::DKIM::Verifier->new();
$v->PRINT($data);
$v->CLOSE;

my @sigs = $v->signatures;
if (!@sigs) {
    print "no DKIM-Signature\n";
    exit 2;
}
my $ok = 1;
for my $s (@sigs) {
    my $label = sprintf "d=%s s=%s a=%s", $s->domain // '', $s->selector // '',
        $s->algorithm // '';
    my $result = $s->result // 'none';
    my $detail = $s->result_detail // $result;
    if ($result eq 'pass') {
        print "pass $label\n";
    } elsif ($detail =~ /unsupported algorithm/i) {
        print "unsupported $label: $detail\n";
    } else {
        $ok = 0;
        print "fail $label: $detail\n";
    }
}
exit($ok ? 0 : 1);
