#!/usr/bin/env node
// The package's bin: runs server/main.ts through tsx, so there is no build step.
import { register } from 'tsx/esm/api';

register();
await import('../main.ts');
