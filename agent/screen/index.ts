/** The screen capture methods, by name (docs/files.md "Screen"); a new method adds one line here. */
import type { ScreenMethod } from '../../common/files.js';
import { fb } from './fb.js';
import type { ScreenMethodImpl } from './method.js';
import { wayland } from './wayland.js';
import { x11 } from './x11.js';

/** Every method, by the name `screen.methods` lists it with. */
export const SCREEN_METHOD_IMPLS: Readonly<Record<ScreenMethod, ScreenMethodImpl>> = { x11, wayland, fb };
