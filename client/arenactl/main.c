/* SPDX-License-Identifier: MIT
 *
 * main.c -- arenactl's entry point: the whole program is arena__ctl_main()
 * (ctl.c) on the real stdout and stderr, so the unit tests can run it on
 * memory streams instead.
 */
#include <stdio.h>

#include "ctl.h"

int main(int argc, char **argv)
{
    return arena__ctl_main(argc, argv, stdout, stderr);
}
