#!/usr/bin/env node
// Entry point of dist/tsrt (Bun single executable) and dist/tsrt.js (Node).
import { main } from './main.js';

process.exitCode = main(process.argv.slice(2));
