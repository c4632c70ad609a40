#!/usr/bin/perl
# doc/paircached.1 (and paircached-check.1): render with groff -man -ww
# without a single warning
# (what lintian and `man -l` check); paircached.1 names every option -h
# lists, the -o ones included, so that the two cannot drift apart.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $page = srcdir() . '/doc/paircached.1';
ok(-f $page, 'doc/paircached.1 exists') or BAIL_OUT('no man page');
my $bin = memc_bin();

for my $p ($page, srcdir() . '/doc/paircached-check.1') {
    SKIP: {
        skip 'no groff', 2 if system('groff -v >/dev/null 2>&1') != 0;
        my ($st, $out, $err) = run_cmd(['groff', '-man', '-Tutf8', '-ww',
                                        '-z', $p], separate => 1,
                                       env => { LC_ALL => 'C.UTF-8' });
        is($st, 0, "groff renders $p");
        is($err, '', "groff -ww: no warning in $p") or diag($err);
    }
}
SKIP: {
    skip 'no man', 2 if system('man -w man >/dev/null 2>&1') != 0
                        && !-x '/usr/bin/man';
    my ($st, $out, $err) = run_cmd(['man', '-l', $page], separate => 1,
                                   env => { MANWIDTH => 80, MANPAGER => 'cat',
                                            PAGER => 'cat',
                                            LC_ALL => 'C.UTF-8' });
    is($st, 0, 'man -l renders it');
    is($err, '', 'man -l: nothing on stderr') or diag($err);
}

my $src = MemcTest::slurp($page);
(my $text = $src) =~ s/\\-/-/g;
$text =~ s/\\f[BIRP]//g;
$text =~ s/\\\(..//g;

my (undef, $help) = run_cmd([$bin, '-h']);
my (@short, @long, @ext);
for my $l (split /\n/, $help) {
    push @short, $1 if $l =~ /^(-[a-zA-Z]),/ || $l =~ /^(-[a-zA-Z]) </;
    push @long, $1 if $l =~ /^-[a-zA-Z], (--[a-z-]+)/;
    if ($l =~ /^\s+- ([a-z_*, ]+?):/ || $l =~ /^\s+- ([a-z_]+(?:,.*)?)$/) {
        push @ext, grep { length } map { s/^\s+|\s+$//gr } split /,/, $1;
    }
    push @ext, grep { /^[a-z_]+$/ } map { s/^\s+|\s+$//gr } split /,/, $1
        if $l =~ /^\s{5}(ssl_[a-z_, ]+)/;
    push @ext, grep { /^[a-z_]+$/ } map { s/^\s+|\s+$//gr } split /,/, $1
        if $l =~ /^\s+- ([a-z_, ]+)(?: \(.*)?:\s/;
}
my %seen;
@ext = grep { !$seen{$_}++ } map { s/ .*//r } @ext;
ok(@short > 30, scalar(@short) . ' short options in -h');
ok(@ext > 40, scalar(@ext) . ' -o options in -h');
my @missing = grep { $text !~ /(?<![\w-])\Q$_\E(?![\w-])/ } @short, @long;
is("@missing", '', 'every command-line option of -h is in the man page');
@missing = grep { $text !~ /(?<![\w])\Q$_\E(?![a-z_])/ } @ext;
is("@missing", '', 'every -o option of -h is in the man page');

done_testing();
