// Every scheduler the data plane knows, by id (its index here). Adding one is one file
// exporting a Scheduler and one line in this list; its name then resolves everywhere
// (ServiceTable, lvsadm -s NAME), because the host reads the names from this list.

import { Scheduler } from "./scheduler";
import { rr } from "./rr";
import { wrr } from "./wrr";
import { lc } from "./lc";
import { wlc } from "./wlc";
import { sed } from "./sed";
import { nq } from "./nq";
import { fo } from "./fo";
import { ovf } from "./ovf";
import { twos } from "./twos";
import { sh } from "./sh";
import { dh } from "./dh";
import { lblc } from "./lblc";
import { lblcr } from "./lblcr";
import { mh } from "./mh";
import { host } from "./host";

export const SCHEDULERS: StaticArray<Scheduler> = [
  rr, wrr, lc, wlc, sed, nq, fo, ovf, twos, sh, dh, lblc, lblcr, mh, host,
];
